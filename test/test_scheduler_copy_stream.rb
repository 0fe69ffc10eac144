# frozen_string_literal: true

require_relative "scheduler_helper"
require "socket"
require "stringio"
require "tmpdir"

# IO.copy_stream under the scheduler goes through io_splice. Every case runs twice: once with
# CRuby's own copy_stream in a thread without a scheduler (the reference), once in a scheduled
# fiber; what a user can observe (the count, the bytes written, positions, errors) must match.
class TestSchedulerCopyStream < SchedulerTest
  SIZE = 3 * 1024 * 1024 + 4321

  def setup
    super
    @dir = Dir.mktmpdir("um-copy-stream")
    @data = Random.new(11).bytes(SIZE)
    File.binwrite(src_path, @data)
  end

  def teardown
    FileUtils.remove_entry(@dir) if @dir
    super
  end

  def src_path
    File.join(@dir, "src")
  end

  def dst_path
    File.join(@dir, "dst")
  end

  def digest(string)
    Digest::SHA256.hexdigest(string)
  end

  def dst_digest
    digest(File.binread(dst_path))
  end

  # The other end of a pipe or socket: a fiber under the scheduler, a thread without one.
  # Returns a lambda that waits for the block's value.
  def beside(&block)
    if Fiber.scheduler && !Fiber.current.blocking?
      done = Thread::Queue.new
      schedule_fiber { done << block.call }
      -> { done.pop }
    else
      thread = Thread.new(&block)
      -> { thread.value }
    end
  end

  # [reference outcome, outcome under the scheduler, the scheduler's in-kernel copies (splices
  # and copy_file_range calls), its reads]
  def both_ways(&kase)
    reference = outcome do
      Thread.new do
        Thread.current.report_on_exception = false
        kase.call
      end.value
    end
    File.binwrite(src_path, @data)
    FileUtils.rm_f(dst_path)
    ours, in_kernel, reads = with_scheduler do |scheduler|
      result = nil
      schedule_fiber { result = outcome(&kase) }
      Fiber.set_scheduler(nil)
      metrics = scheduler.machine.metrics
      [result, metrics[:ops].fetch(:splice, 0) + metrics[:direct].fetch(:splice, 0) + metrics[:copy_file_range],
       metrics[:ops].fetch(:read, 0) + metrics[:direct].fetch(:read, 0)]
    end
    [reference, ours, in_kernel, reads]
  end

  def outcome
    [:ok, yield]
  rescue StandardError => e
    [:error, e.class]
  end

  # in_kernel: true (a copy inside the kernel expected), false (CRuby's copy_stream expected),
  # :buffer (the machine's reads and writes, no splice), nil (unchecked).
  def assert_same_as_cruby(in_kernel: true, &kase)
    reference, ours, count, reads = both_ways(&kase)
    assert_equal reference, ours
    case in_kernel
    when true
      assert_equal :ok, ours.first
      assert_operator count, :>, 0, "expected splices or copy_file_range calls"
    when false
      assert_equal 0, count, "expected CRuby's own copy_stream"
    when :buffer
      assert_equal [:ok, 0], [ours.first, count], "expected no splice"
      assert_operator reads, :>, 0, "expected the machine's reads"
    end
    ours
  end

  def test_path_to_path
    assert_same_as_cruby { [IO.copy_stream(src_path, dst_path), dst_digest] }
  end

  def test_length_and_offset
    assert_same_as_cruby { [IO.copy_stream(src_path, dst_path, 100_000), dst_digest] }
    assert_same_as_cruby { [IO.copy_stream(src_path, dst_path, 100_000, 4097), dst_digest] }
  end

  def test_eof_before_length_returns_the_short_count
    ours = assert_same_as_cruby { [IO.copy_stream(src_path, dst_path, SIZE + 1000, 10), dst_digest] }
    assert_equal SIZE - 10, ours[1][0]
    assert_same_as_cruby { [IO.copy_stream(src_path, dst_path, 10, SIZE + 5), dst_digest] }
  end

  def test_zero_length_still_truncates_the_destination
    File.binwrite(dst_path, "old content")
    assert_same_as_cruby(in_kernel: false) do
      File.binwrite(dst_path, "old content")
      [IO.copy_stream(src_path, dst_path, 0), File.size(dst_path)]
    end
  end

  def test_ruby_read_ahead_is_copied_first_and_positions_advance
    assert_same_as_cruby do
      File.open(src_path, "rb") do |src|
        src.gets
        File.open(dst_path, "wb") do |dst|
          count = IO.copy_stream(src, dst, 200_000)
          [count, src.pos, dst.pos, digest(File.binread(dst_path))]
        end
      end
    end
  end

  def test_length_within_the_read_ahead
    assert_same_as_cruby(in_kernel: false) do
      File.open(src_path, "rb") do |src|
        src.getc
        File.open(dst_path, "wb") { |dst| [IO.copy_stream(src, dst, 3), src.pos, dst.pos, src.read(2)] }
      end
    end
  end

  def test_src_offset_leaves_the_position_alone
    assert_same_as_cruby do
      File.open(src_path, "rb") do |src|
        src.read(5)
        File.open(dst_path, "wb") { |dst| [IO.copy_stream(src, dst, 70_000, 9), src.pos, src.read(3), dst.pos] }
      end
    end
  end

  def test_destination_write_buffer_is_flushed_first
    assert_same_as_cruby do
      File.open(dst_path, "wb") do |dst|
        dst.write("head:")
        [IO.copy_stream(src_path, dst), dst.pos]
      end + [dst_digest]
    end
  end

  def test_append_mode_destination
    assert_same_as_cruby(in_kernel: false) do
      File.binwrite(dst_path, "start")
      File.open(dst_path, "ab") { |dst| IO.copy_stream(src_path, dst, 12_345) }
      [File.size(dst_path), dst_digest]
    end
  end

  def test_file_to_pipe_and_pipe_to_file
    assert_same_as_cruby do
      r, w = IO.pipe
      reader = beside { r.read }
      count = IO.copy_stream(src_path, w)
      w.close
      got = reader.call
      r.close
      [count, digest(got)]
    end
    assert_same_as_cruby do
      r, w = IO.pipe
      writer = beside { w.write(@data).tap { w.close } }
      count = IO.copy_stream(r, dst_path)
      writer.call
      r.close
      [count, dst_digest]
    end
  end

  def test_file_to_socket_socket_to_file_and_socket_to_socket
    assert_same_as_cruby do
      a, b = UNIXSocket.pair
      reader = beside { b.read }
      count = IO.copy_stream(src_path, a)
      a.close
      [count, digest(reader.call)].tap { b.close }
    end
    assert_same_as_cruby do
      server = TCPServer.new("127.0.0.1", 0)
      client = TCPSocket.new("127.0.0.1", server.addr[1])
      peer = server.accept
      writer = beside { client.write(@data).tap { client.close } }
      count = IO.copy_stream(peer, dst_path)
      writer.call
      [peer, server].each(&:close)
      [count, dst_digest]
    end
    # Socket to socket: spliced, it measured slower than reads and writes (splice.rs).
    assert_same_as_cruby(in_kernel: :buffer) do
      a, b = UNIXSocket.pair
      c, d = UNIXSocket.pair
      writer = beside { a.write(@data).tap { a.close } }
      reader = beside { d.read }
      count = IO.copy_stream(b, c, SIZE - 3)
      c.close
      got = reader.call
      writer.call
      [b, d].each(&:close)
      [count, digest(got)]
    end
  end

  def test_errors_match_cruby
    missing = File.join(@dir, "missing")
    assert_equal [:error, Errno::ENOENT], assert_same_as_cruby(in_kernel: nil) { IO.copy_stream(missing, dst_path) }
    assert_equal [:error, Errno::EISDIR], assert_same_as_cruby(in_kernel: nil) { IO.copy_stream(@dir, dst_path) }
    assert_equal [:error, IOError], assert_same_as_cruby(in_kernel: false) {
      File.open(dst_path, "w") { |w| IO.copy_stream(w, File.join(@dir, "x")) }
    }
    assert_equal [:error, IOError], assert_same_as_cruby(in_kernel: false) {
      File.open(src_path) { |r| IO.copy_stream(src_path, r) }
    }
    assert_equal [:error, Errno::ESPIPE], assert_same_as_cruby(in_kernel: nil) {
      with_pipe do |r, w|
        w.write("abc")
        IO.copy_stream(r, dst_path, 3, 1)
      end
    }
  end

  def test_non_descriptor_ends_use_cruby_copy_stream
    assert_same_as_cruby(in_kernel: false) do
      out = StringIO.new
      [IO.copy_stream(src_path, out, 5000, 3), digest(out.string)]
    end
    assert_same_as_cruby(in_kernel: false) do
      [IO.copy_stream(StringIO.new(@data), dst_path), dst_digest]
    end
  end

  def test_blocking_fiber_uses_cruby_copy_stream
    in_kernel = with_scheduler do |scheduler|
      Fiber.new(blocking: true) { IO.copy_stream(src_path, dst_path) }.resume
      metrics = scheduler.machine.metrics
      metrics[:ops].fetch(:splice, 0) + metrics[:direct].fetch(:splice, 0) + metrics[:copy_file_range]
    end
    assert_equal 0, in_kernel
    assert_equal digest(@data), dst_digest
  end

  # [the block's value, copy_file_range calls, splices] under a fresh scheduler.
  def copy_calls(&copy)
    with_scheduler do |scheduler|
      result = nil
      schedule_fiber { result = copy.call }
      Fiber.set_scheduler(nil)
      metrics = scheduler.machine.metrics
      [result, metrics[:copy_file_range], metrics[:ops].fetch(:splice, 0) + metrics[:direct].fetch(:splice, 0)]
    end
  end

  def test_file_to_file_copies_with_copy_file_range
    count, ranges, splices = copy_calls { IO.copy_stream(src_path, dst_path) }
    assert_equal SIZE, count
    assert_equal digest(@data), dst_digest
    assert_operator ranges, :>=, 4, "a piece per MiB"
    assert_equal 0, splices
  end

  # copy_file_range refuses ends on different filesystems (EXDEV): the copy splices instead.
  def test_file_to_file_across_filesystems_splices
    shm = "/dev/shm"
    unless File.directory?(shm) && File.stat(shm).dev != File.stat(@dir).dev
      skip "needs #{shm} on another filesystem than #{@dir}"
    end
    other = File.join(shm, "um-copy-stream-#{Process.pid}")
    File.binwrite(other, @data)
    assert_same_as_cruby { [IO.copy_stream(other, dst_path, SIZE - 7, 7), dst_digest] }
    _, ranges, splices = copy_calls { IO.copy_stream(other, dst_path) }
    assert_equal [0, true], [ranges, splices.positive?]
  ensure
    FileUtils.rm_f(other) if other
  end

  # Overlapping ranges of one file: copy_file_range refuses them (EINVAL), splice copies.
  def test_overlapping_ranges_of_one_file
    assert_same_as_cruby do
      File.binwrite(src_path, @data)
      File.open(src_path, "r+b") do |f|
        f.seek(1000)
        [IO.copy_stream(f, f, 5000, 0), f.pos, digest(File.binread(src_path))]
      end
    end
  end

  def test_other_fibers_run_during_a_large_file_to_file_copy
    count = snoozes = nil
    with_scheduler do |scheduler|
      copying = true
      snoozes = 0
      schedule_fiber { (snoozes += 1; scheduler.machine.snooze) while copying }
      schedule_fiber do
        count = IO.copy_stream(src_path, dst_path)
        copying = false
      end
      Fiber.set_scheduler(nil)
    end
    assert_equal SIZE, count
    assert_equal digest(@data), dst_digest
    assert_operator snoozes, :>=, 3, "the other fiber runs between the pieces"
  end

  # A large file to file copy goes on on a thread of its own (copy_thread.rs) while the fiber
  # waits. An exception raised into the fiber meanwhile stops it: the exception says how much
  # reached the destination, that much of the source is there, the destination's position is
  # past it, and the thread is gone.
  def test_an_interrupted_file_to_file_copy_reports_what_reached_the_destination
    size = 64 * 1024 * 1024
    File.open(src_path, "wb") { |f| 64.times { |i| f.write(Random.new(i).bytes(1024 * 1024)) } }
    # Opened first: Ruby 3.4+ offloads open(2) to the blocking_operation_wait hook, where the
    # copier would wait (and be interrupted) before its copy began.
    src = File.open(src_path, "rb")
    dst = File.open(dst_path, "wb")
    error, pos, threads = with_scheduler do
      result = nil
      copier = schedule_fiber do
        IO.copy_stream(src, dst)
        result = [nil, dst.pos]
      rescue RuntimeError => e
        result = [e, dst.pos]
      end
      schedule_fiber { copier.raise(RuntimeError, "stop") } # runs once the copier waits
      Fiber.set_scheduler(nil)
      result + [Dir["/proc/self/task/*/comm"].map { |comm| File.read(comm).strip }]
    end
    dst.close
    refute_nil error, "the copy was interrupted"
    assert_equal "stop", error.message
    copied = error.bytes_written
    assert_operator copied, :>, 0
    assert_operator copied, :<, size
    assert_equal copied, File.size(dst_path)
    assert_equal copied, pos
    assert File.binread(src_path, copied) == File.binread(dst_path), "the source's first #{copied} bytes"
    refute_includes threads, "um copy_stream"
    # On ext4 the thread reserves the blocks of the whole copy first: those past the end go.
    allocated = File.stat(dst_path).blocks * 512
    assert_operator allocated, :<=, copied + (64 * 1024), "blocks left reserved past the end"
  ensure
    src&.close
    dst&.close unless dst&.closed?
  end

  def test_other_fibers_run_during_a_large_copy
    size = 64 * 1024 * 1024
    File.open(src_path, "wb") { |f| 64.times { |i| f.write(Random.new(i).bytes(1024 * 1024)) } }
    expected = Digest::SHA256.file(src_path).hexdigest
    ticks, got, count = with_scheduler do
      with_pipe do |r, w|
        ticks = []
        copying = true
        got = count = nil
        schedule_fiber { got = Digest::SHA256.hexdigest(r.read) }
        schedule_fiber do
          (ticks << :tick; sleep 0.001) while copying
        end
        schedule_fiber do
          count = IO.copy_stream(src_path, w)
          copying = false
          w.close
        end
        Fiber.set_scheduler(nil)
        [ticks.size, got, count]
      end
    end
    assert_equal size, count
    assert_equal expected, got
    assert_operator ticks, :>, 1, "the ticker fiber should advance while the copy runs"
  end

  def test_closing_the_source_wakes_a_waiting_copy_with_ioerror
    error = with_scheduler do
      r, w = IO.pipe
      error = nil
      schedule_fiber do
        IO.copy_stream(r, dst_path)
      rescue IOError => e
        error = e
      end
      schedule_fiber { r.close }
      Fiber.set_scheduler(nil)
      w.close
      error
    end
    assert_kind_of IOError, error
  end

  def test_io_splice_directly
    with_scheduler do |scheduler|
      with_pipe do |r, w|
        moved = got = nil
        schedule_fiber { File.open(src_path) { |src| moved = scheduler.io_splice(src, w, 10_000, 3) } }
        schedule_fiber { got = r.read(10_000) }
        Fiber.set_scheduler(nil)
        assert_equal 10_000, moved
        assert_equal @data[3, 10_000], got
      end
    end
  end

  def test_io_splice_with_bad_arguments
    with_scheduler do |scheduler|
      with_pipe do |r, w|
        assert_raises(TypeError) { scheduler.io_splice("not an io", w) }
        assert_raises(ArgumentError) { scheduler.io_splice(r, w, -1) }
        assert_raises(TypeError) { scheduler.io_splice(r, w, "10") }
        assert_raises(ArgumentError) { scheduler.io_splice(r) }
        r.close
        assert_raises(IOError) { scheduler.io_splice(r, w) }
      end
      alive = nil
      schedule_fiber { alive = pipe_roundtrip }
      Fiber.set_scheduler(nil)
      assert_equal "still alive", alive
    end
  end
end
