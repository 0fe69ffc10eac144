# frozen_string_literal: true

require_relative "scheduler_helper"
require "socket"
require "tempfile"
require_relative "fast_io_helper"

# IO#readpartial, IO#sysread, IO#read(length) and IO#write(string) take the fast path
# (fast/io.rs) under the Scheduler when the IO's state allows, and CRuby's own
# methods otherwise: either way a call gives exactly what it gives without a scheduler, which
# is what these tests compare (results, encodings, outbufs, exceptions, bytes written).
class TestSchedulerFastIO < SchedulerTest
  include FastIOHelper

  def test_readpartial_results_equal_crubys
    PAIRS.each_value do |pair|
      _, fast = assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.readpartial(5) }
      assert_equal 1, fast
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.readpartial(1000) }
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| [r.readpartial(3), r.readpartial(3)] }
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.readpartial(5, nil) }
    end
  end

  def test_readpartial_outbuf_variants
    assert_same_as_cruby(prepare: fill(TEXT)) do |r|
      buf = +"a much longer previous content of the buffer"
      [r.readpartial(4, buf), buf, r.readpartial(4, buf).equal?(buf)]
    end
    assert_same_as_cruby(prepare: fill(TEXT)) do |r|
      buf = "xy".encode("UTF-16LE")
      [r.readpartial(6, buf), buf]
    end
    assert_same_as_cruby(prepare: fill(TEXT)) do |r|
      buf = +"é"
      [r.readpartial(100, buf), buf.encoding, buf.valid_encoding?]
    end
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial(4, "frozen") }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial(4, :symbol) }
    assert_same_as_cruby(prepare: fill(TEXT)) do |r|
      buf = Object.new
      def buf.to_str = +"converted"
      r.readpartial(4, buf)
    end
  end

  def test_readpartial_argument_edges
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial(0) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.readpartial(0, buf = +"abc"), buf] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial(-1) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial(2.9) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial("3") }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.readpartial(1, +"", 3) }
  end

  def test_readpartial_at_eof_closed_and_write_only
    assert_same_as_cruby(prepare: fill("", close: true)) { |r| r.readpartial(10) }
    assert_same_as_cruby(prepare: fill("ab", close: true)) do |r|
      buf = +"previous"
      got = [r.readpartial(10, buf)]
      begin
        r.readpartial(10, buf)
      rescue EOFError => e
        got << e.class << buf
      end
      got
    end
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.readpartial(10) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |_, w| w.readpartial(10) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.close_read && r.readpartial(10) }
  end

  def test_read_ahead_and_buffers_take_crubys_path
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.getc, r.readpartial(100)] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.getc, r.ungetc("Z"), r.readpartial(100)] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.ungetc("ZZ"), r.readpartial(1), r.readpartial(100)] }
    assert_same_as_cruby(prepare: fill("one\ntwo\nthree")) { |r| [r.gets, r.readpartial(100)] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.getbyte, r.read(3), r.sysread(3)] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.getc, r.sysread(3)] }
    # getc through a converter leaves characters in the character buffer: CRuby refuses a
    # byte-oriented read then.
    assert_same_as_cruby(prepare: fill(TEXT)) do |r|
      r.set_encoding("UTF-8:UTF-16LE")
      [r.getc, r.readpartial(100)]
    end
  end

  def test_readpartial_after_getc_drained_the_buffer_goes_fast_again
    _, fast = assert_same_as_cruby(prepare: fill("ab")) do |r, w|
      [r.getc, r.getc, w.write("cd"), r.readpartial(10)]
    end
    assert_equal 3, fast, "the first getc's fill, the write and the readpartial (the read-ahead is empty again)"
    _, fast = assert_same_as_cruby(prepare: fill("ab")) { |r| [r.getc, r.readpartial(10)] }
    assert_equal 1, fast, "getc's fill; then bytes in the read-ahead"
  end

  # Encodings: the byte read is the same whatever the IO's encodings; the fast path only
  # serves IOs without conversion and leaves the rest to CRuby.
  def test_encodings_and_binmode
    [
      ->(r, _) { r.binmode },
      ->(r, _) { r.set_encoding("ISO-8859-1") },
      ->(r, _) { r.set_encoding("UTF-16LE") },
      ->(r, _) { r.set_encoding("UTF-8", "ISO-8859-1") },
      ->(r, _) { r.set_encoding("BINARY", "UTF-8") },
      ->(r, _) { r.set_encoding("UTF-8", universal_newline: true) }
    ].each do |encode|
      prepare = lambda do |r, w|
        encode.call(r, w)
        w.write("a\r\nb é\r\n")
      end
      assert_same_as_cruby(prepare: prepare) { |r| [r.readpartial(100), r.external_encoding, r.internal_encoding] }
      assert_same_as_cruby(prepare: prepare) { |r| [r.sysread(4), r.read(3)] }
      assert_same_as_cruby(prepare: prepare) { |r| r.readpartial(100, +"x") }
    end
  end

  def test_conversion_falls_back
    _, fast = assert_same_as_cruby(prepare: ->(r, w) { r.set_encoding("UTF-8:ISO-8859-1") && w.write(TEXT) }) do |r|
      r.readpartial(100)
    end
    assert_equal 0, fast
  end

  def test_sysread_results_equal_crubys
    PAIRS.each_value do |pair|
      _, fast = assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.sysread(5) }
      assert_equal 1, fast
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| [r.sysread(100, buf = +"z" * 200), buf] }
    end
    assert_same_as_cruby(prepare: fill("", close: true)) { |r| r.sysread(10) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.sysread(0) }
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.sysread(0) }
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.sysread(3) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.sysread(-2) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.sysread(3, "frozen") }
  end

  def test_read_length_results_equal_crubys
    PAIRS.each_value do |pair|
      _, fast = assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.read(5) }
      assert_equal 1, fast
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT, close: false)) { |r| [r.read(3), r.read(4, buf = +"old"), buf] }
    end
    assert_same_as_cruby(prepare: fill(TEXT, close: true)) { |r| [r.read(1000), r.read(5), r.read(5, buf = +"x"), buf] }
    assert_same_as_cruby(prepare: fill(TEXT, close: true)) { |r| [r.read(0), r.read(0, +"abc"), r.read] }
    assert_same_as_cruby(prepare: fill(TEXT, close: true)) { |r| [r.read(nil), r.read(nil, +"q")] }
    assert_same_as_cruby(prepare: fill(TEXT, close: true)) { |r| r.read(-1) }
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.read(2) }
  end

  def test_read_length_waits_for_all_bytes
    got = in_scheduled_fiber do
      r, w = IO.pipe
      writer = Fiber.schedule do
        5.times do |i|
          w.write("#{i}" * 1000)
          sleep 0.001
        end
        w.close
      end
      result = [r.read(4500).bytesize, r.read(4500)&.bytesize, r.read(10)]
      sleep 0.001 while writer.alive?
      r.close
      result
    end
    assert_equal [4500, 500, nil], got
  end

  def test_a_readpartial_that_would_wait_waits_in_the_ring
    got = in_scheduled_fiber do
      r, w = IO.pipe
      Fiber.schedule do
        sleep 0.01
        w.write("late")
      end
      before = fast_calls
      data = r.readpartial(100)
      [data, fast_calls - before, Fiber.scheduler.machine.metrics[:ops][:read].to_i.positive?]
    ensure
      [r, w].each(&:close)
    end
    # The other fiber's write went straight to the fd; this read waited in the ring, on the
    # fast path (an IO without a path: CRuby's errors would name no file).
    assert_equal ["late", 2, true], got
  end

  def test_files
    Tempfile.create("fast_io") do |f|
      f.write(TEXT)
      f.flush
      opens = [
        -> { File.open(f.path, "rb") },
        -> { File.open(f.path, "r") },
        -> { File.open(f.path, "r:ISO-8859-1") },
        -> { File.open(f.path, "r:UTF-8:UTF-16LE") },
        -> { File.open(f.path, "r+") }
      ]
      opens.each do |open|
        pair = -> { [open.call, nil] }
        assert_same_as_cruby(pair: pair) { |r| [r.readpartial(4), r.read(4), r.sysread(4), r.pos] }
        assert_same_as_cruby(pair: pair) { |r| [r.read(1000), r.read(1), r.readpartial(1)] }
        assert_same_as_cruby(pair: pair) { |r| [r.read(3), r.pos, r.seek(1), r.readpartial(3), r.pos] }
      end
      dir = -> { [File.open(File.dirname(f.path)), nil] }
      assert_same_as_cruby(pair: dir) { |r| r.readpartial(4) }
      assert_same_as_cruby(pair: dir) { |r| r.read(4) }
    end
  end

  def test_timeout
    skip "IO#timeout is Ruby 3.2+ (#{RUBY_VERSION} has none)" unless IO.method_defined?(:timeout=)

    # CRuby 3.3.8's own readpartial on an empty pipe without a scheduler ignores IO#timeout
    # (it waits forever), so that one is compared with CRuby's method under the scheduler.
    got = in_scheduled_fiber do
      r, w = IO.pipe
      r.timeout = 0.05
      outcomes = [true, false].map do |fast|
        UringMachine.fast_io = fast
        r.readpartial(10)
      rescue IO::TimeoutError => e
        [e.class, e.message]
      end
      [r, w].each(&:close)
      outcomes
    end
    assert_equal 2, got.uniq.size + 1, got.inspect
    assert_equal IO::TimeoutError, got[0][0]
    assert_same_as_cruby(prepare: ->(r, _) { r.timeout = 0.05 }) { |r| r.read(10) }
    assert_same_as_cruby(prepare: ->(r, w) { r.timeout = 0.05 && w.write("ab") }) { |r| r.read(10) }
    assert_same_as_cruby(prepare: ->(_, w) { w.timeout = 0.05 }) { |_, w| w.write("x" * 1_000_000) }
  end

  def test_switch_off_takes_crubys_path
    UringMachine.fast_io = false
    refute UringMachine.fast_io
    _, fast = assert_same_as_cruby(prepare: fill(TEXT)) { |r, w| [r.readpartial(5), r.sysread(2), r.read(2), w.write("x")] }
    assert_equal 0, fast
  end

  def test_not_taken_in_a_blocking_fiber
    got = in_scheduled_fiber do
      r, w = IO.pipe
      w.write(TEXT)
      before = fast_calls
      blocking = Fiber.new(blocking: true) { r.readpartial(3) }.resume
      [blocking, fast_calls - before, r.readpartial(3), fast_calls - before]
    ensure
      [r, w].each(&:close)
    end
    assert_equal ["hé".b, 0, "llo", 1], got
  end

  def test_write_results_equal_crubys
    PAIRS.each_value do |pair|
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| w.write("hello") }
      assert_equal 1, fast
      assert_write_same_as_cruby(pair: pair) { |w| [w.write("é"), w.write("x\n".encode("UTF-16LE")), w.write("\xff".b)] }
      assert_write_same_as_cruby(pair: pair) { |w| [w.write(""), w.write(:sym), w.write(12), w.write(nil)] }
      big, fast = assert_write_same_as_cruby(pair: pair) { |w| w.write(("a".."z").to_a.join * 40_000) }
      assert_equal 1_040_000, big[1].bytesize
      assert_equal 1, fast
    end
  end

  def test_write_of_a_mutable_string_that_must_wait
    assert_write_same_as_cruby do |w|
      s = +"y" * 500_000
      [w.write(s), s.frozen?, s << "z", s.bytesize]
    end
  end

  def test_write_errors_equal_crubys
    assert_write_same_as_cruby { |w, r| r.close && w.write("x") }
    assert_write_same_as_cruby { |w| w.close && w.write("x") }
    assert_write_same_as_cruby { |w| w.close && w.write("") }
    assert_write_same_as_cruby { |_, r| r.write("x") }
    assert_write_same_as_cruby(pair: PAIRS[:unix]) { |w, r| r.close && w.write("x") }
  end

  def test_write_buffering_conversion_and_write_lock_take_crubys_path
    _, fast = assert_write_same_as_cruby do |w|
      w.sync = false
      [w.write("a"), w.flush && nil, w.sync = true, w.write("b")]
    end
    assert_equal 1, fast, "the sync write after the flush"
    _, fast = assert_write_same_as_cruby { |w| w.set_encoding("ISO-8859-1") && w.write("é") }
    assert_equal 0, fast
    assert_write_same_as_cruby { |w| w.binmode && w.write("é") }
    Tempfile.create("fast_io") do |f|
      got = in_scheduled_fiber do
        File.open(f.path, "w") do |out|
          before = fast_calls
          buffered = [out.write("buffered "), fast_calls - before]
          out.flush
          out.sync = true
          buffered + [out.write("synced"), fast_calls - before]
        end
      end
      assert_equal [9, 0, 6, 1], got, "a File's writes are buffered until sync = true"
      File.open(f.path, "w") do |out|
        out.sync = true
        got = in_scheduled_fiber do
          before = fast_calls
          [out.write("synced"), fast_calls - before]
        end
      end
      assert_equal [6, 1], got
      assert_equal "synced", File.read(f.path)
      # A small write to a File goes straight; to a large one, the page cache answers "would
      # block", so CRuby's method writes it (through the hook).
      File.open(f.path, "w") do |out|
        out.sync = true
        got = in_scheduled_fiber do
          before = fast_calls
          small = out.write("start".b)
          counted = fast_calls - before
          [small, out.write(+"f" * 3_000_000), counted]
        end
      end
      assert_equal [5, 3_000_000, 1], got
      assert_equal "start#{"f" * 3_000_000}", File.read(f.path)
    end
  end

  # A read that waited sends the fd's next reads to the ring; a close forgets that, so a new
  # pipe that gets the same number reads directly.
  def test_a_closed_fds_number_reads_directly_again
    got = in_scheduled_fiber do
      r, w = IO.pipe
      reader = Fiber.schedule { r.readpartial(10) } # nothing there yet: it waits in the ring
      w.write("a")
      sleep 0.001 while reader.alive?
      metrics = Fiber.scheduler.machine.method(:metrics)
      reads = -> { metrics.call.values_at(:direct, :ops).map { |counts| counts[:read].to_i } }
      w.write("b")
      before = reads.call
      waited = [r.readpartial(10), reads.call.zip(before).map { |a, b| a - b }]
      numbers = [r, w].map(&:fileno)
      [r, w].each(&:close)
      r, w = IO.pipe
      w.write("c")
      before = reads.call
      again = [[r, w].map(&:fileno) == numbers, r.readpartial(10), reads.call.zip(before).map { |a, b| a - b }]
      [r, w].each(&:close)
      [waited, again]
    end
    # [direct reads, reads in the ring]
    assert_equal [["b", [0, 1]], [true, "c", [1, 0]]], got
  end

  # A write that had to wait leaves the IO with a write lock (3.3+ create it on the first
  # write CRuby's method does); once nobody holds it, writes go fast again.
  def test_writes_after_one_that_waited_go_fast
    got = in_scheduled_fiber do
      r, w = IO.pipe
      writer = Fiber.schedule { w.write("x" * 200_000) }
      data = +""
      data << r.sysread(1 << 16) while data.bytesize < 200_000
      sleep 0.001 while writer.alive?
      before = fast_calls
      [w.write("y"), fast_calls - before, r.sysread(10)].tap { [r, w].each(&:close) }
    end
    assert_equal [1, 1, "y"], got
  end

  # CRuby holds the write lock for each write(2) attempt, not for the whole String: writers
  # interleave after a partial write either way. While it is held the fast path is not taken.
  def test_writes_under_a_write_lock_take_crubys_path
    got = in_scheduled_fiber do
      r, w = IO.pipe
      w.sync = false
      w.write("a")
      w.flush
      w.sync = true
      before = fast_calls
      writers = %w[A B].map { |c| Fiber.schedule { w.write(c * 200_000) } }
      data = +""
      data << r.sysread(1 << 16) while data.bytesize < 400_001
      sleep 0.001 while writers.any?(&:alive?)
      [r, w].each(&:close)
      [data.count("A"), data.count("B"), fast_calls - before]
    end
    assert_equal [200_000, 200_000], got[0, 2]
    assert_operator got[2], :>, 0, "the reader's sysread calls"
  end

  # A subclass that overrides an I/O hook sees every read and write (CRuby's test/fiber
  # IOErrorScheduler answers -EINVAL from io_write).
  class FailingWrites < UringMachine::Scheduler
    def io_write(*)
      -Errno::EINVAL::Errno
    end
  end

  def test_a_subclass_overriding_io_write_gets_every_write
    errors = with_scheduler_class(FailingWrites) do
      r, w = IO.pipe
      Fiber.schedule do
        w.write("x")
      rescue SystemCallError => e
        e.class
      ensure
        [r, w].each(&:close)
      end.then { |f| UringMachine.machine_of(f).join(f) }
    end
    assert_equal Errno::EINVAL, errors
  end

  def with_scheduler_class(klass)
    Thread.new do
      Fiber.set_scheduler(klass.new)
      yield
    ensure
      Fiber.set_scheduler(nil)
    end.value
  end
end
