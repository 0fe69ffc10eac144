# frozen_string_literal: true

require_relative "scheduler_helper"
require_relative "fast_io_helper"
require "socket"
require "tempfile"

# gets, readline, each_line, readlines, getc, readchar, getbyte, readbyte and eof? under the
# Scheduler fill the IO's empty read-ahead buffer with a direct read and then run CRuby's
# method (fast/lines.rs): every outcome (lines, $_, lineno, $., encodings, what is
# left to read, exceptions) is the one CRuby gives in a plain thread.
class TestSchedulerFastLines < SchedulerTest
  include FastIOHelper

  LINES = "line one\r\nline two\n\n\n\npara a\npara b\n\nhéllo wörld\nlast line, no newline"

  # Arguments of gets/readline/each_line/readlines the tests try.
  LINE_ARGS = [
    [], ["o"], ["ll"], [""], [nil], [3], [2], ["l", 2], [nil, 5], ["\n", nil], ["\r\n"],
    [{ chomp: true }], ["\r\n", { chomp: true }], ["", { chomp: true }], [4, { chomp: true }],
    [nil, { chomp: true }], [{ chomp: false }], [-1], ["é"]
  ].freeze

  # The block's value, or the exception it raised with its message's fd number taken out (the
  # scheduler's own descriptors shift the numbers).
  def without_fd
    yield
  rescue SystemCallError => e
    [e.class, e.message.sub(/fd:\d+/, "fd:N")]
  end

  def line_args(args)
    args.last.is_a?(Hash) ? [args[0...-1], args.last] : [args, {}]
  end

  def test_gets_results_equal_crubys
    PAIRS.each do |name, pair|
      LINE_ARGS.each do |args|
        positional, keywords = line_args(args)
        outcome, fast = assert_same_as_cruby(pair: pair, prepare: fill(LINES, close: true)) do |r|
          $. = 0
          Array.new(12) { [r.gets(*positional, **keywords), $_, r.lineno, $.] }
        end
        # A separator that CRuby rejects (a non-ASCII one for a binary socket) is CRuby's.
        assert_operator fast, :>=, 1, [name, args].inspect unless outcome[0][0] == :raised
      end
    end
  end

  def test_each_line_and_readlines_equal_crubys
    LINE_ARGS.each do |args|
      positional, keywords = line_args(args)
      _, fast = assert_same_as_cruby(prepare: fill(LINES, close: true)) do |r|
        $_ = "before"
        $. = 0
        seen = []
        returned = r.each_line(*positional, **keywords) { |l| seen << [l, $_, r.lineno, $.] }
        [seen, returned.equal?(r), $_, r.lineno]
      end
      assert_operator fast, :>=, 1, args.inspect
      _, fast = assert_same_as_cruby(prepare: fill(LINES, close: true)) do |r|
        $_ = "before"
        $. = 0
        [r.readlines(*positional, **keywords), $_, r.lineno, $.]
      end
      assert_operator fast, :>=, 1, args.inspect
      assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| r.each_line(*positional, **keywords).to_a }
    end
  end

  def test_each_line_block_flow_and_argument_errors
    assert_same_as_cruby(prepare: fill(LINES, close: true)) do |r|
      got = r.each_line { |l| break [:broke, l] if l.start_with?("para") }
      [got, r.gets]
    end
    assert_same_as_cruby(prepare: fill(LINES, close: true)) do |r|
      r.each_line { |l| raise ArgumentError, l if l.include?("two") }
    end
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.each_line(0) { nil }, r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.readlines(0), r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.gets(0), r.gets("x", 0), r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| r.gets("a", "b") }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| r.gets(:sym) }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| r.gets(1, 2, 3) }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| r.gets(2**70) }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.gets(other: 1), r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.readline(other: 1), r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.gets("é".encode("ISO-8859-1")), r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.gets("o".encode("UTF-16LE")), r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) do |r|
      sep = Object.new
      def sep.to_str = "o"
      [r.gets(sep), r.gets]
    end
    assert_same_as_cruby(prepare: fill(LINES, close: true)) do |r|
      r.each_line do |l|
        r.set_encoding("ISO-8859-1") if l.start_with?("para")
        $_ = l.encoding
      end
      [$_, r.lineno]
    end
  end

  def test_readline_and_eof
    _, fast = assert_same_as_cruby(prepare: fill("a\nb", close: true)) do |r|
      got = [r.readline, $_, r.readline(chomp: true), $_]
      begin
        r.readline
      rescue EOFError => e
        got << e.class << $_
      end
      got << r.lineno << r.eof? << r.eof
    end
    assert_operator fast, :>=, 2
    assert_same_as_cruby(prepare: fill("", close: true)) do |r|
      $_ = "before"
      [r.gets, $_, r.lineno, r.eof?, r.each_line { flunk }.equal?(r), r.readlines, r.getc, r.getbyte]
    end
    assert_same_as_cruby(prepare: fill("", close: true)) { |r| r.readchar }
    assert_same_as_cruby(prepare: fill("", close: true)) { |r| r.readbyte }
    assert_same_as_cruby(prepare: fill("", close: true)) { |r| [r.eof, r.read, r.read(1)] }
    assert_same_as_cruby(prepare: fill("x", close: true)) { |r| [r.eof?, r.readpartial(5), r.eof?, r.eof] }
  end

  def test_limit_on_a_multibyte_character
    data = "héllo wörld ✓ ok\n"
    [1, 2, 3, 4, 7, 14].each do |limit|
      assert_same_as_cruby(prepare: fill(data, close: true)) do |r|
        Array.new(6) { r.gets(limit)&.then { |s| [s, s.encoding, s.valid_encoding?] } }
      end
      assert_same_as_cruby(prepare: fill(data, close: true)) { |r| r.each_line(limit).to_a }
    end
  end

  def test_chars_bytes_and_ungetc
    assert_same_as_cruby(prepare: fill(LINES)) { |r| [r.getc, r.getc, r.ungetc("Zé"), r.gets, r.gets] }
    assert_same_as_cruby(prepare: fill(LINES)) { |r| [r.ungetc("x\ny"), r.gets, r.gets, r.lineno] }
    assert_same_as_cruby(prepare: fill(LINES)) { |r| [r.getbyte, r.ungetbyte(65), r.readbyte, r.readchar, r.gets] }
    assert_same_as_cruby(prepare: fill("é", close: true)) { |r| [r.getc, r.getc, r.eof?] }
    assert_same_as_cruby(prepare: fill("héllo\n", close: true)) { |r| r.each_char.to_a + r.each_byte.to_a }
    _, fast = assert_same_as_cruby(prepare: fill(LINES)) { |r| [r.getc, r.readchar, r.getbyte, r.readbyte, r.eof?] }
    assert_equal 1, fast, "one fill; the rest is in the read-ahead"
  end

  def test_mixing_lines_with_other_reads
    assert_same_as_cruby(prepare: fill(LINES)) { |r| [r.gets, r.readpartial(100), r.read_nonblock(5, exception: false)] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.gets, r.read(5), r.read, r.gets] }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| [r.gets, r.sysread(5)] }
    assert_same_as_cruby(prepare: fill(LINES)) { |r| [r.readpartial(3), r.gets, r.gets(chomp: true)] }
    assert_same_as_cruby(prepare: fill(LINES)) { |r| [$. = 0, r.lineno = 41, r.gets(3), $., r.gets, r.lineno, $.] }
  end

  def test_encodings
    [
      ->(r, _) { r.binmode },
      ->(r, _) { r.set_encoding("ISO-8859-1") },
      ->(r, _) { r.set_encoding("BINARY") },
      ->(r, _) { r.set_encoding("UTF-16LE") },
      ->(r, _) { r.set_encoding("UTF-8", "ISO-8859-1") },
      ->(r, _) { r.set_encoding("ISO-8859-1", "UTF-8") },
      ->(r, _) { r.set_encoding("UTF-8", universal_newline: true) },
      ->(r, _) { r.set_encoding("UTF-8", crlf_newline: true) }
    ].each do |encode|
      prepare = lambda do |r, w|
        encode.call(r, w)
        w.write(LINES)
        w.close
      end
      assert_same_as_cruby(prepare: prepare) { |r| Array.new(4) { r.gets&.then { |s| [s, s.encoding] } } }
      assert_same_as_cruby(prepare: prepare) { |r| r.readlines(chomp: true).map { |s| [s, s.encoding] } }
      assert_same_as_cruby(prepare: prepare) { |r| [r.getc, r.gets("o"), r.gets(nil)] }
    end
    _, fast = assert_same_as_cruby(prepare: ->(r, w) { r.set_encoding("UTF-8:ISO-8859-1") && w.write(LINES) }) do |r|
      [r.gets, r.eof?, r.getc]
    end
    assert_equal 0, fast, "conversion: CRuby's path"
    _, fast = assert_same_as_cruby(prepare: ->(r, w) { r.binmode && w.write(LINES) }) { |r| [r.gets, r.gets] }
    assert_equal 1, fast
  end

  def test_closed_and_write_only
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.gets }
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.each_line { nil } }
    assert_same_as_cruby(prepare: ->(r, _) { r.close }) { |r| r.eof? }
    assert_same_as_cruby(prepare: fill(LINES)) { |_, w| w.gets }
    assert_same_as_cruby(prepare: fill(LINES)) { |_, w| w.getc }
    assert_same_as_cruby(prepare: fill(LINES, close: true)) { |r| r.each_line { r.close } }
  end

  def test_a_line_longer_than_the_read_ahead
    long = "#{'x' * 20_000}é\nshort\n#{'y' * 9000}"
    four_lines = proc { |r| [r.gets, r.gets, r.gets, r.gets].map { |s| s&.size } }
    # All there before the reads (it fits in a pipe): the fills that start a gets are direct
    # (CRuby's gets refills in the middle of a long line itself, through the hook).
    _, fast = assert_same_as_cruby(prepare: fill(long, close: true), &four_lines)
    assert_equal 2, fast, "the first gets' fill and the one that finds EOF"
    # Arriving while the reads wait (then fills go through the ring until one fills the
    # read-ahead, so how many are direct depends on timing): the lines are CRuby's.
    PAIRS.each_value do |pair|
      writer = lambda do |_r, w|
        Thread.new do
          w.write(long)
          w.close
        end
      end
      assert_same_as_cruby(pair: pair, prepare: writer, &four_lines)
      assert_same_as_cruby(pair: pair, prepare: writer) { |r| r.each_line(10_000).map(&:size) }
    end
  end

  def test_files
    Tempfile.create("fast_lines") do |f|
      f.write(LINES)
      f.flush
      ["rb", "r", "r:ISO-8859-1", "r:UTF-8:UTF-16LE", "r+", "rt"].each do |mode|
        pair = -> { [File.open(f.path, mode), nil] }
        assert_same_as_cruby(pair: pair) { |r| [r.gets, r.pos, r.gets(""), r.readlines, r.eof?, r.pos] }
        assert_same_as_cruby(pair: pair) { |r| [r.each_line(chomp: true).to_a, r.rewind, r.gets, r.lineno] }
        assert_same_as_cruby(pair: pair) { |r| [r.write("Z"), r.gets] }
      end
      _, fast = assert_same_as_cruby(pair: -> { [File.open(f.path, "rb"), nil] }) { |r| r.readlines }
      assert_operator fast, :>=, 1
      dir = -> { [File.open(File.dirname(f.path)), nil] }
      assert_same_as_cruby(pair: dir) { |r| without_fd { r.gets } }
      assert_same_as_cruby(pair: dir) { |r| without_fd { r.each_line.to_a } }
      assert_same_as_cruby(pair: dir) { |r| without_fd { r.eof? } }
    end
  end

  def test_connection_reset
    pair = lambda do
      server = TCPServer.new("127.0.0.1", 0)
      client = TCPSocket.new("127.0.0.1", server.addr[1])
      peer = server.accept
      server.close
      [client, peer]
    end
    reset = lambda do |_, w|
      w.write("partial")
      w.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
      w.close
      sleep 0.05
    end
    assert_same_as_cruby(pair: pair, prepare: reset) { |r| without_fd { [r.gets, r.gets] } }
  end

  def test_a_line_that_arrives_in_pieces_waits_in_the_ring
    got = in_scheduled_fiber do
      r, w = IO.pipe
      Fiber.schedule do
        ["hel", "lo\nwor", "ld\n", "tail"].each do |piece|
          sleep 0.01
          w.write(piece)
        end
        w.close
      end
      before = fast_calls
      lines = [r.gets, r.gets, r.gets, r.gets]
      [lines, fast_calls - before >= 1, Fiber.scheduler.machine.metrics[:ops][:read].to_i.positive?]
    ensure
      r.close
    end
    assert_equal [["hello\n", "world\n", "tail", nil], true, true], got
    got = in_scheduled_fiber do
      r, w = IO.pipe
      Fiber.schedule do
        3.times do |i|
          sleep 0.01
          w.write("#{i}\n")
        end
        w.close
      end
      r.each_line.to_a
    ensure
      r.close
    end
    assert_equal ["0\n", "1\n", "2\n"], got
  end

  def test_timeout
    skip "IO#timeout is Ruby 3.2+ (#{RUBY_VERSION} has none)" unless IO.method_defined?(:timeout=)

    got = in_scheduled_fiber do
      r, w = IO.pipe
      r.timeout = 0.05
      outcomes = [true, false].flat_map do |fast|
        UringMachine.fast_io = fast
        [-> { r.gets }, -> { r.each_line { nil } }, -> { r.eof? }].map do |call|
          call.call
        rescue IO::TimeoutError => e
          e.class
        end
      end
      [r, w].each(&:close)
      outcomes
    end
    assert_equal [IO::TimeoutError] * 6, got
  end

  def test_switch_off_takes_crubys_path
    UringMachine.fast_io = false
    _, fast = assert_same_as_cruby(prepare: fill(LINES, close: true)) do |r|
      [r.gets, r.each_line(chomp: true).to_a, r.eof?, r.getc, r.readlines]
    end
    assert_equal 0, fast
  end

  def test_not_taken_in_a_blocking_fiber
    got = in_scheduled_fiber do
      r, w = IO.pipe
      w.write(LINES)
      before = fast_calls
      blocking = Fiber.new(blocking: true) { r.gets }.resume
      [blocking, fast_calls - before]
    ensure
      [r, w].each(&:close)
    end
    assert_equal ["line one\r\n", 0], got
  end
end
