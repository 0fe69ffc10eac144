# frozen_string_literal: true

require_relative "scheduler_helper"
require_relative "fast_io_helper"

# BasicSocket#recv takes the fast path (fast/socket.rs) under the Scheduler when the
# socket and arguments allow, CRuby's own method otherwise; BasicSocket#send is CRuby's. Each
# call must give exactly what it gives without a scheduler.
class TestSchedulerFastSocket < SchedulerTest
  include FastIOHelper

  STREAMS = PAIRS.slice(:unix, :tcp).freeze

  def udp_pair
    a = UDPSocket.new
    a.bind("127.0.0.1", 0)
    b = UDPSocket.new
    b.bind("127.0.0.1", 0)
    b.connect(*a.addr.values_at(3, 1))
    a.connect(*b.addr.values_at(3, 1))
    [a, b]
  end

  def test_recv_results_equal_crubys
    STREAMS.each_value do |pair|
      _, fast = assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.recv(5) }
      assert_equal 1, fast
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| [r.recv(3, 0), r.recv(100, nil)] }
      _, fast = assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) do |r|
        [r.recv(4, Socket::MSG_PEEK), r.recv(4, Socket::MSG_PEEK), r.recv(100)]
      end
      assert_equal 3, fast
    end
  end

  def test_recv_outbufs
    STREAMS.each_value do |pair|
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) do |r|
        buf = +"a much longer previous content of the buffer"
        [r.recv(4, 0, buf), buf, r.recv(4, 0, buf).equal?(buf)]
      end
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| [r.recv(6, 0, buf = "xy".encode("UTF-16LE")), buf] }
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| [r.recv(100, 0, buf = +"é"), buf.encoding] }
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.recv(4, 0, "frozen") }
      assert_same_as_cruby(pair: pair, prepare: fill(TEXT)) { |r| r.recv(4, 0, :symbol) }
    end
  end

  def test_recv_argument_edges_take_crubys_path
    [
      ->(r) { r.recv(0) },
      ->(r) { r.recv(-1) },
      ->(r) { r.recv(2.5) },
      ->(r) { r.recv(2**40) },
      ->(r) { r.recv(3, "0") },
      ->(r) { r.recv(3, 0, nil, 1) },
      ->(r) { r.recv }
    ].each do |call|
      _, fast = assert_same_as_cruby(pair: PAIRS[:unix], prepare: fill(TEXT)) { |r| call.call(r) }
      assert_equal 0, fast
    end
    # MSG_WAITALL waits for all of it: CRuby's.
    _, fast = assert_same_as_cruby(pair: PAIRS[:unix], prepare: fill(TEXT)) { |r| r.recv(5, Socket::MSG_WAITALL) }
    assert_equal 0, fast
  end

  def test_recv_at_eof_and_after_a_reset
    STREAMS.each_value do |pair|
      assert_same_as_cruby(pair: pair, prepare: fill("", close: true)) { |r| [r.recv(5), r.recv(5)] }
      assert_same_as_cruby(pair: pair, prepare: fill("ab", close: true)) { |r| [r.recv(5), r.recv(5, 0, +"x")] }
    end
    # A TCP peer that closes with unread data resets the connection.
    tcp_reset = lambda do
      server = TCPServer.new("127.0.0.1", 0)
      client = TCPSocket.new("127.0.0.1", server.addr[1])
      peer = server.accept
      server.close
      client.write("unread by peer")
      sleep 0.01
      peer.close
      [client, TCPSocket.new("127.0.0.1", 1).tap(&:close)]
    rescue Errno::ECONNREFUSED
      [client, nil]
    end
    # The kernel reports the reset once: the fast path raises it (errors are not counted).
    got, = assert_same_as_cruby(pair: tcp_reset) { |r| [r.recv(5), r.recv(5)] }
    assert_equal [:raised, Errno::ECONNRESET, "Connection reset by peer - recvfrom(2)"], got[0]
  end

  def test_recv_closed_and_buffered
    assert_same_as_cruby(pair: PAIRS[:unix], prepare: ->(r, _) { r.close }) { |r| r.recv(10) }
    assert_same_as_cruby(pair: PAIRS[:unix], prepare: fill(TEXT)) { |r| [r.getc, r.recv(10)] }
    assert_same_as_cruby(pair: PAIRS[:unix], prepare: fill(TEXT)) { |r| [r.ungetc("x"), r.recv(10)] }
  end

  def test_recv_datagrams
    pair = -> { udp_pair }
    _, fast = assert_same_as_cruby(pair: pair, prepare: ->(_, w) { w.send("one", 0) && w.send("", 0) && w.send("three", 0) }) do |r|
      [r.recv(100), r.recv(100), r.recv(2, Socket::MSG_PEEK), r.recv(2)]
    end
    assert_equal 4, fast, "three datagrams, the empty one included, one peeked at first"
  end

  def test_a_recv_that_would_wait_is_crubys_and_waits_in_the_ring
    got = in_scheduled_fiber do
      r, w = UNIXSocket.pair
      Fiber.schedule do
        sleep 0.01
        w.send("late", 0)
      end
      before = fast_calls
      [r.recv(100), fast_calls - before]
    ensure
      [r, w].each(&:close)
    end
    assert_equal ["late", 0], got, "this recv waited: CRuby's"
  end

  def test_send_results_equal_crubys
    STREAMS.each_value do |pair|
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| w.send("hello", 0) }
      assert_equal 0, fast, "send is CRuby's"
      assert_write_same_as_cruby(pair: pair) { |w| [w.send("é", 0), w.send("x\n".encode("UTF-16LE"), 0), w.send("", 0)] }
      assert_write_same_as_cruby(pair: pair) { |w| w.send("frozen", Socket::MSG_NOSIGNAL) }
      _, fast = assert_write_same_as_cruby(pair: pair) { |w| [w.send(:sym, 0), w.send("x", nil), w.send("x")] }
      assert_equal 0, fast
    end
  end

  def test_send_to_a_closed_peer
    STREAMS.each_value do |pair|
      assert_write_same_as_cruby(pair: pair) { |w, r| r.close && sleep(0.01) && [w.send("x", 0), w.send("y", 0)] }
      assert_write_same_as_cruby(pair: pair) { |w| w.close_write && w.send("x", 0) }
      assert_write_same_as_cruby(pair: pair) { |w| w.close && w.send("x", 0) }
    end
  end

  # Larger than the socket buffer: under the scheduler as without one, send returns how much
  # the kernel took (a short count whose size depends on how fast the reader drains the
  # connection, so it differs from run to run) and the reader gets exactly those bytes.
  def test_a_large_send_equals_crubys
    data = "z" * 3_000_000
    large_send = ->(w, _r) { w.send(data, 0) }
    STREAMS.each do |name, pair|
      cruby = Thread.new { write_outcome(pair, large_send) }.value
      ours = in_scheduled_fiber { write_outcome(pair, large_send) }
      { cruby: cruby, scheduler: ours }.each do |who, ((kind, count), received)|
        assert_equal :returned, kind, "#{name}, #{who}"
        assert_includes 1..data.bytesize, count, "#{name}, #{who}"
        assert_equal data.byteslice(0, count), received, "#{name}, #{who}: the bytes sent, nothing else"
      end
    end
  end

  def test_send_with_a_destination
    pair = lambda do
      a = UDPSocket.new
      a.bind("127.0.0.1", 0)
      [a, Socket.new(:INET, :DGRAM)]
    end
    _, fast = assert_same_as_cruby(pair: pair) do |r, w|
      to = Socket.sockaddr_in(r.addr[1], "127.0.0.1")
      [w.send("to a String", 0, to), w.send("to an Addrinfo", 0, Addrinfo.new(to)), r.recv(100), r.recv(100)]
    end
    assert_equal 2, fast, "both recvs"
    assert_same_as_cruby(pair: pair) { |_, w| w.send("x", 0, "bad") }
  end

  def test_switched_off
    UringMachine.fast_io = false
    _, fast = assert_same_as_cruby(pair: PAIRS[:unix], prepare: fill(TEXT)) { |r, w| [r.recv(3), w.send("x", 0)] }
    assert_equal 0, fast
  end
end
