# frozen_string_literal: true

require_relative "scheduler_helper"
require_relative "fast_io_helper"
require "open3"
require "rbconfig"
require "tempfile"

# IO#read_nonblock and IO#syswrite take the fast path (fast/nonblock.rs) under the
# Scheduler when the IO's state allows, CRuby's own methods otherwise; IO#write with several
# pieces and IO#puts(line) reach the fast write with the joined String. Each call must give
# exactly what it gives without a scheduler.
class TestSchedulerFastNonblock < SchedulerTest
  include FastIOHelper


  # read_nonblock on a socket is BasicSocket's own (MSG_DONTWAIT, no hook): only IO's is ours.
  IO_PAIRS = {
    pipe: -> { IO.pipe },
    unix_as_io: lambda {
      a, b = UNIXSocket.pair
      [IO.for_fd(a.fileno.tap { a.autoclose = false }), b]
    }
  }.freeze

  def test_read_nonblock_results_equal_crubys
    IO_PAIRS.each_value do |pair|
      _, fast = assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.read_nonblock(5) }
      assert_equal 1, fast
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| [r.read_nonblock(3), r.read_nonblock(100)] }
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.read_nonblock(5, nil, exception: false) }
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.read_nonblock(5, exception: true) }
    end
    PAIRS.each_value do |pair|
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.read_nonblock(5) }
    end
  end

  def test_read_nonblock_would_block
    IO_PAIRS.each_value do |pair|
      _, fast = assert_same_as_cruby(pair: pair) { |r| r.read_nonblock(5) }
      assert_equal 1, fast
      _, fast = assert_same_as_cruby(pair: pair) { |r| r.read_nonblock(5, exception: false) }
      assert_equal 1, fast
      assert_same_as_cruby(pair: pair) { |r| [r.read_nonblock(5, buf = +"keep", exception: false), buf] }
      assert_same_as_cruby(pair: pair) do |r|
        r.read_nonblock(5)
      rescue IO::WaitReadable => e
        [e.class, e.class.ancestors.take(4), e.errno, e.message]
      end
    end
  end

  def test_read_nonblock_at_eof
    IO_PAIRS.each_value do |pair|
      _, fast = assert_same_as_cruby(pair: pair, prepare: fill("", close: true)) { |r| r.read_nonblock(5) }
      assert_equal 1, fast
      assert_same_as_cruby(pair: pair, prepare: fill("", close: true)) { |r| r.read_nonblock(5, exception: false) }
      assert_same_as_cruby(pair: pair, prepare: fill("ab", close: true)) do |r|
        buf = +"previous"
        [r.read_nonblock(5, buf), r.read_nonblock(5, buf, exception: false), buf]
      end
    end
  end

  def test_read_nonblock_outbufs
    assert_same_as_cruby(prepare: fill(TEXT)) do |r|
      buf = +"a much longer previous content of the buffer"
      [r.read_nonblock(4, buf), buf, r.read_nonblock(4, buf).equal?(buf)]
    end
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.read_nonblock(6, buf = "xy".encode("UTF-16LE")), buf] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.read_nonblock(100, buf = +"é"), buf.encoding] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(4, "frozen") }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(4, :symbol) }
  end

  def test_read_nonblock_argument_edges
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.read_nonblock(0), r.read_nonblock(0, +"abc")] }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(-1) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(2.9) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(3, exception: nil) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(3, exception: false, other: 1) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(3, nil, { exception: false }) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(3, { exception: false }) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock }
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| r.read_nonblock(1, +"", 3) }
  end

  def test_read_nonblock_closed_write_only_and_buffered
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.read_nonblock(10) }
    assert_same_as_cruby(prepare: fill(TEXT)) { |_, w| w.read_nonblock(10) }
    _, fast = assert_same_as_cruby(prepare: fill(TEXT)) do |r, w|
      [r.getc, r.read_nonblock(3), r.read_nonblock(100), w.write("cd"), r.read_nonblock(100)]
    end
    assert_equal 3, fast, "getc's fill, the write and the last read; the read-ahead is CRuby's to serve"
    assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.ungetc("ZZ"), r.read_nonblock(1), r.read_nonblock(100)] }
    assert_same_as_cruby(prepare: fill(TEXT)) do |r|
      r.set_encoding("UTF-8:UTF-16LE")
      [r.getc, r.read_nonblock(100)]
    end
    assert_same_as_cruby(prepare: ->(r, w) { r.set_encoding("UTF-8:ISO-8859-1") && w.write(TEXT) }) do |r|
      [r.read_nonblock(100), r.external_encoding, r.internal_encoding]
    end
  end

  # CRuby's read_nonblock leaves the fd in O_NONBLOCK mode; so does the fast path.
  def test_read_nonblock_sets_o_nonblock
    require "io/nonblock"
    prepare = lambda do |r, w|
      r.nonblock = false
      w.write("ab")
    end
    _, fast = assert_same_as_cruby(prepare: prepare) { |r| [r.nonblock?, r.read_nonblock(5), r.nonblock?] }
    assert_equal 1, fast
  end

  def test_read_nonblock_files
    Tempfile.create("fast_nonblock") do |f|
      f.write(TEXT)
      f.flush
      pair = -> { [File.open(f.path, "rb"), nil] }
      _, fast = assert_same_as_cruby(pair: pair) { |r| [r.read_nonblock(4), r.pos, r.read_nonblock(1000), r.pos] }
      assert_equal 2, fast
      assert_same_as_cruby(pair: pair) { |r| [r.read(1000), r.read_nonblock(5, exception: false)] }
      assert_same_as_cruby(pair: pair) { |r| [r.read(1000), r.read_nonblock(5)] }
      assert_same_as_cruby(pair: -> { [File.open(f.path, "r"), nil] }) { |r| [r.gets, r.read_nonblock(5)] }
      dir = -> { [File.open(File.dirname(f.path)), nil] }
      assert_same_as_cruby(pair: dir) { |r| r.read_nonblock(4) }
    end
  end

  def test_read_nonblock_switched_off_and_in_a_blocking_fiber
    UringMachine.fast_io = false
    _, fast = assert_same_as_cruby(prepare: fill(TEXT)) { |r| [r.read_nonblock(5), r.read_nonblock(1, exception: false)] }
    assert_equal 0, fast
    # CRuby's, through the io_read hook, which answers EAGAIN to a *_nonblock caller.
    _, fast = assert_same_as_cruby do |r|
      [r.read_nonblock(5, exception: false), r.read_nonblock(5)]
    rescue IO::WaitReadable => e
      [e.class, e.message]
    end
    assert_equal 0, fast
    UringMachine.fast_io = true
    got = in_scheduled_fiber do
      r, w = IO.pipe
      w.write(TEXT)
      before = fast_calls
      blocking = Fiber.new(blocking: true) { r.read_nonblock(3) }.resume
      [blocking, fast_calls - before, r.read_nonblock(3), fast_calls - before]
    ensure
      [r, w].each(&:close)
    end
    assert_equal ["hé".b, 0, "llo", 1], got
  end

  def test_syswrite_results_equal_crubys
    PAIRS.each_value do |pair|
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| w.syswrite("hello") }
      assert_equal 1, fast
      assert_write_same_as_cruby(pair: pair) { |w| [w.syswrite("é"), w.syswrite("x\n".encode("UTF-16LE")), w.syswrite("\xff".b)] }
      assert_write_same_as_cruby(pair: pair) { |w| [w.syswrite(""), w.syswrite(:sym), w.syswrite(12), w.syswrite(nil)] }
    end
  end

  # A pipe holds 64 KiB: one syswrite writes what fits, as CRuby's (which waits in the io_write
  # hook until some room is free when none is).
  def test_syswrite_partial_and_waiting
    got = in_scheduled_fiber do
      r, w = IO.pipe
      reader = Fiber.schedule do
        sleep 0.01
        r.read(200_000).bytesize
      end
      before = fast_calls
      first = w.syswrite("a" * 100_000)
      second = w.syswrite("b" * 100_000) # the pipe is full: CRuby's method, through the ring
      w.close
      sleep 0.001 while reader.alive?
      r.close
      [first, second.positive?, fast_calls - before]
    end
    assert_equal [65_536, true], got[0, 2]
    assert_operator got[2], :>=, 1
  end

  def test_syswrite_errors_equal_crubys
    assert_write_same_as_cruby { |w, r| r.close && w.syswrite("x") }
    assert_write_same_as_cruby { |w| w.close && w.syswrite("x") }
    assert_write_same_as_cruby { |_, r| r.syswrite("x") }
    assert_write_same_as_cruby(pair: PAIRS[:unix]) { |w, r| r.close && w.syswrite("x") }
    assert_write_same_as_cruby(pair: PAIRS[:tcp]) { |w, r| r.close && sleep(0.01) && [w.syswrite("x"), w.syswrite("y")] }
  end

  def test_syswrite_after_buffered_write_is_crubys
    _, fast = assert_write_same_as_cruby do |w|
      w.sync = false
      [w.write("a"), capture_io { w.syswrite("b") }, w.flush && nil]
    end
    assert_equal 0, fast, "the warning for buffered IO is CRuby's"
    Tempfile.create("fast_nonblock") do |f|
      got = in_scheduled_fiber do
        File.open(f.path, "w") do |out|
          before = fast_calls
          [out.syswrite("one "), out.syswrite("two"), fast_calls - before]
        end
      end
      assert_equal [4, 3, 2], got
      assert_equal "one two", File.read(f.path)
    end
  end

  # With the gem's IO#syswrite in place (a Machine was made), CRuby's warning still names the
  # caller's line, not the gem's.
  def test_the_buffered_io_warning_names_the_callers_line
    lib = File.expand_path("../lib", __dir__)
    script = "require 'uring_machine'; UringMachine::Machine.new; _r, w = IO.pipe; w.sync = false\n" \
             "w.write('a')\nw.syswrite('b')\n"
    _, err, status = Open3.capture3(RbConfig.ruby, "-w", "-I", lib, "-e", script)
    assert status.success?, err
    assert_equal "-e:3: warning: syswrite for buffered IO\n", err
  end

  def test_syswrite_switched_off
    UringMachine.fast_io = false
    _, fast = assert_write_same_as_cruby { |w| w.syswrite("x") }
    assert_equal 0, fast
  end

  # CRuby's puts(line) calls write(line, "\n"); coalesced into one String, that takes the
  # fast write as one write(string) does.
  def test_puts_and_several_pieces_are_one_fast_write
    PAIRS.each_value do |pair|
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| w.puts("line") }
      assert_equal 1, fast
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| w.write("head ", "body", 3) }
      assert_equal 1, fast
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| w.puts("a", "b", ["c"]) }
      assert_equal 1, fast
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| w.print("a", "b") }
      assert_equal 1, fast
    end
    assert_write_same_as_cruby { |w| [w.puts("x" * 300_000), w.write("a" * 100_000, "b" * 100_000)] }
    assert_write_same_as_cruby { |w, r| r.close && w.puts("x") }
  end
end
