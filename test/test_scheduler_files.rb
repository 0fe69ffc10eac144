# frozen_string_literal: true

require_relative "scheduler_helper"
require "tmpdir"
require "rbconfig"

class TestSchedulerFiles < SchedulerTest
  def setup
    super
    @dir = Dir.mktmpdir("um-sched-files")
  end

  def teardown
    FileUtils.remove_entry(@dir) if @dir
    super
  end

  def path(name = "file")
    File.join(@dir, name)
  end

  def test_regular_file_read_through_the_scheduler
    content = (1..2000).map { |i| "line #{i}\n" }.join
    File.binwrite(path, content)
    got = with_scheduler do
      got = {}
      schedule_fiber do
        got[:read] = File.read(path)
        File.open(path) do |f|
          got[:head] = f.read(10)
          got[:gets] = f.gets
          got[:lines] = f.each_line.count
        end
        got[:readlines] = File.readlines(path).size
      end
      got
    end
    assert_equal content, got[:read]
    assert_equal "line 1\nlin", got[:head]
    assert_equal "e 2\n", got[:gets]
    assert_equal 1998, got[:lines]
    assert_equal 2000, got[:readlines]
  end

  def test_write_a_file_and_read_it_back
    got = with_scheduler do
      got = nil
      schedule_fiber do
        File.open(path, "w") do |f|
          f.write("hello ")
          f.puts("world")
          f.flush
          f.syswrite("sys\n")
        end
        File.write(path, "appended\n", mode: "a")
        got = File.read(path)
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal "hello world\nsys\nappended\n", got
    assert_equal got, File.read(path)
  end

  def test_reads_advance_the_file_position
    File.binwrite(path, (0..255).map(&:chr).join)
    got = with_scheduler do
      got = []
      schedule_fiber do
        File.open(path, "rb") do |f|
          got << f.read(10) << f.pos
          got << f.sysread(5) << f.pos
          f.seek(250)
          got << f.read << f.pos << f.read(1)
        end
      end
      got
    end
    expected = [(0..9).map(&:chr).join, 10, (10..14).map(&:chr).join, 15, (250..255).map(&:chr).join, 256, nil]
    assert_equal expected, got
  end

  def test_pread_and_pwrite
    File.binwrite(path, "0123456789")
    got = with_scheduler do
      got = []
      schedule_fiber do
        File.open(path, "r+b") do |f|
          got << f.pread(4, 3)
          got << f.pos
          got << f.pwrite("abc", 5)
          got << f.pos
          got << f.pread(100, 0)
          got << f.pwrite("end", 12) # past the end: a hole of zeros
          got << assert_raises(EOFError) { f.pread(1, 100) }.class
        end
      end
      got
    end
    assert_equal ["3456", 0, 3, 0, "01234abc89", 3, EOFError], got
    assert_equal "01234abc89\0\0end".b, File.binread(path)
  end

  def test_concurrent_preads_from_many_fibers
    data = Random.new(3).bytes(1024 * 1024)
    File.binwrite(path, data)
    chunks = with_scheduler do
      chunks = {}
      File.open(path, "rb") do |f|
        64.times do |i|
          schedule_fiber { chunks[i] = f.pread(16 * 1024, i * 16 * 1024) }
        end
        Fiber.set_scheduler(nil)
      end
      chunks
    end
    assert_equal 64, chunks.size
    assert_equal data, (0...64).map { |i| chunks.fetch(i) }.join
  end

  def test_large_file_round_trip
    expected = Digest::SHA256.new
    got = with_scheduler do
      got = nil
      schedule_fiber do
        random = Random.new(4)
        File.open(path, "wb") do |f|
          64.times do
            chunk = random.bytes(1024 * 1024)
            expected << chunk
            f.write(chunk)
          end
        end
        got = Digest::SHA256.hexdigest(File.binread(path))
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal 64 * 1024 * 1024, File.size(path)
    assert_equal expected.hexdigest, got
  end

  def test_copy_stream_from_a_file_into_a_pipe_read_by_another_fiber
    data = Random.new(5).bytes(8 * 1024 * 1024)
    File.binwrite(path, data)
    copied, got = with_scheduler do
      with_pipe do |r, w|
        copied = got = nil
        schedule_fiber { got = r.read }
        schedule_fiber do
          copied = IO.copy_stream(path, w)
          w.close
        end
        Fiber.set_scheduler(nil)
        [copied, got]
      end
    end
    assert_equal data.bytesize, copied
    assert_equal Digest::SHA256.hexdigest(data), Digest::SHA256.hexdigest(got)
  end

  def test_copy_stream_from_a_pipe_into_a_file
    data = Random.new(6).bytes(3 * 1024 * 1024 + 17)
    copied = with_scheduler do
      with_pipe do |r, w|
        copied = nil
        schedule_fiber { copied = IO.copy_stream(r, path) }
        schedule_fiber do
          w.write(data)
          w.close
        end
        Fiber.set_scheduler(nil)
        copied
      end
    end
    assert_equal data.bytesize, copied
    assert_equal data, File.binread(path)
  end

  def test_read_from_a_file_opened_write_only_raises
    File.write(path, "x")
    error = with_scheduler do
      error = nil
      schedule_fiber do
        File.open(path, "w") { |f| error = assert_raises(IOError) { f.read } }
      end
      Fiber.set_scheduler(nil)
      error
    end
    assert_match(/not opened for reading/, error.message)
  end

  # Small file writes are copies into the page cache: they complete at once, on filesystems
  # that refuse non-blocking buffered writes (ext4) as well, instead of a ring round trip
  # through a kernel worker thread for each.
  def test_small_file_writes_complete_without_the_ring
    chunk = "w" * 1024
    ops = with_scheduler do |scheduler|
      ops = nil
      schedule_fiber do
        ops = ring_ops_during(scheduler) do
          File.open(path, "w") do |f|
            300.times { f.write(chunk) }
            f.sync = true
            300.times { f.write(chunk) }
          end
        end
      end
      Fiber.set_scheduler(nil)
      ops
    end
    assert_equal chunk * 600, File.binread(path)
    assert_equal 0, ops.fetch(:write, 0), "ring ops: #{ops.inspect}"
  end

  # procfs and sysfs refuse non-blocking reads, but their files are generated in memory: they
  # are read at once, not handed to a kernel worker thread for each read.
  def test_proc_and_sys_files_are_read_without_the_ring
    sys_file = "/sys/kernel/mm/transparent_hugepage/enabled"
    got, ops = with_scheduler do |scheduler|
      got = {}
      ops = nil
      schedule_fiber do
        ops = ring_ops_during(scheduler) do
          got[:status] = File.read("/proc/self/status")
          got[:sys] = File.read(sys_file) if File.readable?(sys_file)
        end
      end
      Fiber.set_scheduler(nil)
      [got, ops]
    end
    assert_match(/^Pid:\s+#{Process.pid}$/, got[:status])
    assert_equal File.read(sys_file), got[:sys] if got[:sys]
    assert_equal 0, ops.fetch(:read, 0), "ring ops: #{ops.inspect}"
  end

  # The fd of a file that took the direct path is made a blocking pipe's (IO#reopen keeps the
  # number): writes to it must wait in the ring for the reader fiber, not block the thread in
  # write(2) with the reader never running. In a child process: that failure is a hang.
  REUSED_FD_SCRIPT = <<~RUBY
    require "io/nonblock"
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    r, w = IO.pipe
    w.nonblock = false
    file = File.open(ARGV[0], "w")
    file.sync = true
    Fiber.schedule do
      file.write("learned as a file")
      file.reopen(w)
      64.times { file.write("p" * 16_384) }
      file.close
      w.close
    end
    Fiber.schedule { print r.read.bytesize }
  RUBY

  def test_a_file_descriptor_reused_for_a_pipe_waits_for_its_reader
    lib = File.expand_path("../lib", __dir__)
    cmd = ["timeout", "-s", "KILL", "30", RbConfig.ruby, "-I", lib, "-ruring_machine", "-e", REUSED_FD_SCRIPT, path]
    output = IO.popen(cmd, &:read)
    assert $?.success?, "the script did not finish (#{$?.inspect})"
    assert_equal (64 * 16_384).to_s, output
  end
end
