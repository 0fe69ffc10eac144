# frozen_string_literal: true

require_relative "scheduler_helper"

# IO#write(a, b, ...), IO#puts with several lines and IO#print with several pieces are one
# write under the Scheduler (CRuby would hand each piece to io_write separately), and give
# exactly what CRuby gives without a scheduler: bytes, return values, exceptions.
class TestSchedulerWriteCoalescing < SchedulerTest
  def teardown
    UringMachine.coalesce_writes = true
    super
  end

  # What +body+ (given the write end of a fresh IO.pipe, or of what +pair+ makes) returns or
  # raises, and the bytes the read end then holds (read by a thread, so large writes work).
  def outcome(pair, body)
    r, w = pair.call
    reader = Thread.new { r.read.b }
    result = begin
      [:returned, body.call(w)]
    rescue StandardError => e
      [:raised, e.class, e.message]
    end
    w.close unless w.closed?
    [result, reader.value]
  ensure
    [r, w].each { |io| io.close unless io.closed? }
  end

  # Asserts that +body+ has the same outcome in a scheduled fiber as in a plain thread (CRuby's
  # own IO methods, no scheduler); returns the scheduled fiber's outcome.
  def assert_same_as_cruby(pair: -> { IO.pipe }, &body)
    expected = Thread.new { outcome(pair, body) }.value
    actual = in_scheduled_fiber { outcome(pair, body) }
    assert_equal expected, actual
    actual
  end

  # The datagrams the block's writes to one end of a UNIX datagram pair produced: one
  # datagram per write(2)/send(2), so they show how many writes there were.
  def datagrams
    a, b = UNIXSocket.pair(:DGRAM)
    yield a
    received = []
    loop { received << b.recv_nonblock(65_536) }
  rescue IO::WaitReadable
    received
  ensure
    a&.close
    b&.close
  end

  class Stringy
    def initialize(text) = @text = text
    def to_s = @text
  end

  class Failing
    def to_s = raise(ArgumentError, "no string for you")
  end

  def test_several_pieces_are_one_write
    got = in_scheduled_fiber { datagrams { |io| io.write("HTTP/1.1 200 OK\r\n\r\n", "hello") } }
    assert_equal ["HTTP/1.1 200 OK\r\n\r\nhello"], got
  end

  def test_without_coalescing_each_piece_is_its_own_write
    UringMachine.coalesce_writes = false
    refute UringMachine.coalesce_writes
    got = in_scheduled_fiber { datagrams { |io| io.write("head", "body") } }
    assert_equal %w[head body], got, "CRuby's path under a scheduler: one write per piece"
  end

  def test_puts_and_print_with_several_pieces_are_one_write
    got = in_scheduled_fiber do
      datagrams do |io|
        io.puts "a"
        io.puts "b", "c"
        io.puts ["d", ["e"]]
        io.print "f", "g"
      end
    end
    assert_equal ["a\n", "b\nc\n", "d\ne\n", "fg"], got
  end

  # Segments the peer of a TCP socket has received (Linux tcp_info.tcpi_segs_in).
  def segments_in(socket)
    info = socket.getsockopt(Socket::IPPROTO_TCP, Socket::TCP_INFO).data
    skip "tcp_info has no tcpi_segs_in here" if info.bytesize < 144
    info.unpack1("L", offset: 140)
  end

  def test_two_piece_write_over_tcp_is_one_segment
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    peer = server.accept
    head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
    before = segments_in(peer)
    written = in_scheduled_fiber { client.write(head, "hello") }
    assert_equal head.bytesize + 5, written
    got = +""
    got << peer.readpartial(4096) while got.bytesize < written
    assert_equal "#{head}hello", got
    # CRuby's path sends the body as a second segment, which Nagle holds until the peer's
    # delayed ACK once the connection is past its first exchanges.
    assert_equal 1, segments_in(peer) - before, "segments for one two-piece write"
  ensure
    [server, client, peer].each { |io| io&.close }
  end

  def test_write_results_equal_crubys
    assert_same_as_cruby { |w| w.write("ab", :cd, 12, nil, 1.5, Stringy.new("!")) }
    assert_same_as_cruby { |w| w.write("é", "ü".encode("ISO-8859-1"), "\xff".b, "x\n".encode("UTF-16LE")) }
    assert_same_as_cruby { |w| w.write("", "") }
    assert_same_as_cruby { |w| w.write("one") }
    assert_same_as_cruby { |w| w.write }
  end

  def test_large_pieces_are_written_in_full
    _, bytes = assert_same_as_cruby { |w| w.write("a" * 300_000, "b" * 200_001, "c") }
    assert_equal 500_002, bytes.bytesize
    # The first write stops inside the second piece (a pipe holds 64 KiB): the rest follows.
    _, bytes = assert_same_as_cruby { |w| w.write("a" * 1000, "b" * 100_000, "", "c") }
    assert_equal "#{'a' * 1000}#{'b' * 100_000}c", bytes
  end

  def test_encoding_conversion_binmode_and_buffering_take_crubys_path
    assert_same_as_cruby do |w|
      w.set_encoding("ISO-8859-1")
      w.write("é", "ü", "x".encode("UTF-16LE"))
    end
    assert_same_as_cruby do |w|
      w.set_encoding("UTF-8", "ISO-8859-1")
      w.write("é".encode("ISO-8859-1"), "ü")
    end
    assert_same_as_cruby do |w|
      w.binmode
      w.write("é", "ü".encode("UTF-16BE"))
    end
    assert_same_as_cruby do |w|
      w.sync = false
      [w.write("a", "b"), w.write("c"), w.flush && w.write("d", "e")]
    end
    assert_same_as_cruby do |w| # sync set with bytes still buffered: they go first
      w.sync = false
      w.write("buffered ")
      w.sync = true
      w.write("then ", "these")
    end
  end

  def test_text_mode_and_newline_decorators_take_crubys_path
    reopened = lambda do |mode, **options|
      lambda do
        r, w = IO.pipe
        w.autoclose = false # the new IO owns the descriptor
        [r, IO.new(w.fileno, mode, **options)]
      end
    end
    assert_same_as_cruby(pair: reopened.call("w:UTF-8")) { |w| w.write("a\n", "é\n") }
    assert_same_as_cruby(pair: reopened.call("wt")) { |w| w.write("a\n", "b\n") }
    assert_same_as_cruby(pair: reopened.call("w", crlf_newline: true)) { |w| w.write("a\n", "b\n") }
    _, bytes = assert_same_as_cruby(pair: reopened.call("w", crlf_newline: true)) { |w| w.puts("a", "b") }
    assert_equal "a\r\nb\r\n", bytes
  end

  def test_puts_results_equal_crubys
    assert_same_as_cruby { |w| w.puts("a", "b\n", "", nil, :sym, 3, Stringy.new("s"), ["x", ["y", []]], []) }
    assert_same_as_cruby { |w| w.puts([]) }
    assert_same_as_cruby { |w| w.puts }
    assert_same_as_cruby { |w| w.puts(nil) }
    assert_same_as_cruby { |w| w.puts("x\n".encode("UTF-16LE"), "y".encode("UTF-16LE"), "z".encode("UTF-32BE")) }
    assert_same_as_cruby do |w|
      loop = [1, 2]
      loop << loop
      w.puts(loop, [loop])
    end
    to_ary = Object.new
    def to_ary.to_ary = %w[from to_ary]
    assert_same_as_cruby { |w| w.puts(to_ary, "end") }
  end

  def test_print_results_equal_crubys
    assert_same_as_cruby { |w| w.print("a", :b, 3, nil) }
    assert_same_as_cruby { |w| w.print("alone") }
    verbose = $VERBOSE
    $VERBOSE = nil # setting $, warns
    begin
      $, = "-"
      $\ = "\n"
      assert_same_as_cruby { |w| w.print("a", "b", 3) }
      assert_same_as_cruby { |w| w.print("only") }
    ensure
      $, = nil
      $\ = nil
      $VERBOSE = verbose
    end
  end

  def test_a_failing_to_s_leaves_what_crubys_would_have_written
    assert_same_as_cruby { |w| w.write("written?", Failing.new) }
    assert_same_as_cruby { |w| w.puts("before", Failing.new, "after") }
    assert_same_as_cruby { |w| w.puts(["before", [Failing.new]], "after") }
    assert_same_as_cruby { |w| w.print("before", Failing.new, "after") }
  end

  def test_closed_and_read_only_streams_raise_as_in_cruby
    assert_same_as_cruby do |w|
      w.close
      w.write("a", "b")
    end
    assert_same_as_cruby do |w|
      w.close
      w.puts("a", "b")
    end
    read_only = lambda do
      r, w = IO.pipe
      begin
        r.write("a", "b")
      rescue IOError => e
        [e.class, e.message]
      ensure
        [r, w].each(&:close)
      end
    end
    assert_equal [IOError, "not opened for writing"], Thread.new(&read_only).value
    assert_equal [IOError, "not opened for writing"], in_scheduled_fiber(&read_only)
  end

  def test_broken_pipe_raises_as_in_cruby
    body = lambda do
      r, w = IO.pipe
      r.close
      begin
        w.write("a", "b")
      rescue SystemCallError => e
        [e.class, e.message]
      ensure
        w.close
      end
    end
    expected = Thread.new(&body).value
    assert_equal Errno::EPIPE, expected.first
    assert_equal expected, in_scheduled_fiber(&body)
  end

  def test_a_subclass_overriding_write_sees_crubys_calls
    klass = Class.new(IO) do
      attr_reader :calls

      def write(*pieces)
        (@calls ||= []) << pieces.map(&:to_s)
        super
      end
    end
    body = lambda do
      r, w = IO.pipe
      io = klass.for_fd(w.fileno, autoclose: false)
      io.sync = true
      io.puts("a", ["b"])
      io.print("c", "d")
      io.write("e", "f")
      w.close
      [io.calls, r.read]
    ensure
      r.close
    end
    expected = Thread.new(&body).value
    assert_equal expected, in_scheduled_fiber(&body)
    assert_equal [%W[a \n], %W[b \n], %w[c], %w[d], %w[e f]], expected.first
  end

  def test_duplex_popen_writes_through_its_write_io
    body = lambda do
      IO.popen(["cat"], "r+") do |io|
        n = io.write("to ", "cat")
        io.close_write
        [n, io.read]
      end
    end
    assert_equal [6, "to cat"], Thread.new(&body).value
    assert_equal [6, "to cat"], in_scheduled_fiber(&body)
  end
end
