# frozen_string_literal: true

require_relative "scheduler_helper"
require "tmpdir"

class TestSchedulerSockets < SchedulerTest
  PAIRS = 1000

  # Echoes PAIRS concurrent connections. Each client keeps its connection open until every
  # client got its echo (a barrier pipe that PAIRS fibers wait on at once), so 2 * PAIRS
  # sockets are really open at the same time.
  def run_echo(server, &connect)
    ensure_fd_limit(2 * PAIRS + 256)
    with_scheduler do
      replies = {}
      echoed = 0
      barrier_r, barrier_w = IO.pipe
      schedule_fiber do
        PAIRS.times do
          client = server.accept
          schedule_fiber do
            client.write(client.gets)
            client.read # the client closes after the barrier
            client.close
          end
        end
      end
      PAIRS.times do |i|
        schedule_fiber do
          socket = connect.call
          socket.write("hello #{i}\n")
          replies[i] = socket.gets
          echoed += 1
          barrier_w.write("!") if echoed == PAIRS
          barrier_r.wait_readable(20) or raise "barrier timed out"
          socket.close
        end
      end
      Fiber.set_scheduler(nil)
      [barrier_r, barrier_w].each(&:close)
      assert_equal PAIRS, replies.size
      PAIRS.times { |i| assert_equal "hello #{i}\n", replies[i] }
    end
  ensure
    server.close
  end

  def test_tcp_echo_with_many_concurrent_pairs
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    run_echo(server) { TCPSocket.new("127.0.0.1", port) }
  end

  def test_unix_echo_with_many_concurrent_pairs
    Dir.mktmpdir("um-sched-sock") do |dir|
      path = File.join(dir, "echo.sock")
      run_echo(UNIXServer.new(path)) { UNIXSocket.new(path) }
    end
  end

  def test_socket_pair_read_waits_for_the_peer
    got = with_scheduler do
      a, b = UNIXSocket.pair
      got = nil
      schedule_fiber { got = a.read(5) }
      schedule_fiber do
        sleep 0.005
        b.write("hel")
        sleep 0.005
        b.write("lo")
      end
      Fiber.set_scheduler(nil)
      [a, b].each(&:close)
      got
    end
    assert_equal "hello", got
  end

  def test_udp_send_and_recv
    got = with_scheduler do
      receiver = UDPSocket.new
      receiver.bind("127.0.0.1", 0)
      sender = UDPSocket.new
      sender.connect("127.0.0.1", receiver.addr[1])
      got = []
      schedule_fiber do
        got << receiver.recv(100)
        message, from = receiver.recvfrom(100)
        got << message << from[1]
      end
      schedule_fiber do
        sleep 0.005
        sender.send("datagram one", 0)
        sender.send("two", 0)
      end
      Fiber.set_scheduler(nil)
      got << sender.addr[1]
      [receiver, sender].each(&:close)
      got
    end
    assert_equal "datagram one", got[0]
    assert_equal "two", got[1]
    assert_equal got[3], got[2], "recvfrom reports the sender's port"
  end

  def test_tcp_recv_and_send
    got = with_scheduler do
      server = TCPServer.new("127.0.0.1", 0)
      got = []
      schedule_fiber do
        peer = server.accept
        got << peer.recv(100)
        peer.send("pong", 0)
        peer.close
      end
      schedule_fiber do
        client = TCPSocket.new("127.0.0.1", server.addr[1])
        sleep 0.005
        client.send("ping", 0)
        got << client.recv(100)
        got << client.recv(100)
        client.close
      end
      Fiber.set_scheduler(nil)
      server.close
      got
    end
    # BasicSocket#recv reports a closed connection as "" up to Ruby 3.2 and as nil from 3.3.
    closed = RUBY_VERSION >= "3.3" ? nil : ""
    assert_equal ["ping", "pong", closed], got
  end

  def test_accept_nonblock_and_wait_readable
    got = with_scheduler do
      server = TCPServer.new("127.0.0.1", 0)
      got = []
      schedule_fiber do
        got << server.accept_nonblock(exception: false)
        got << server.wait_readable(10).equal?(server)
        peer = server.accept_nonblock
        got << peer.read
        peer.close
      end
      schedule_fiber do
        sleep 0.005
        client = TCPSocket.new("127.0.0.1", server.addr[1])
        client.write("via nonblock")
        client.close
      end
      Fiber.set_scheduler(nil)
      server.close
      got
    end
    assert_equal [:wait_readable, true, "via nonblock"], got
  end

  def test_tcpsocket_new_with_a_host_name_and_socket_tcp
    resolved = []
    got = with_scheduler do |scheduler|
      scheduler.singleton_class.prepend(Module.new do
        define_method(:address_resolve) do |host|
          super(host).tap { |addresses| resolved << [host, addresses] }
        end
      end)
      server = TCPServer.new("127.0.0.1", 0)
      port = server.addr[1]
      got = []
      schedule_fiber do
        2.times do
          peer = server.accept
          peer.write(peer.gets.upcase)
          peer.close
        end
      end
      schedule_fiber do
        socket = TCPSocket.new("localhost", port)
        socket.puts "by tcpsocket"
        got << socket.read
        socket.close
        Socket.tcp("localhost", port) do |sock|
          sock.puts "by socket.tcp"
          got << sock.read
        end
      end
      Fiber.set_scheduler(nil)
      server.close
      got
    end
    assert_equal ["BY TCPSOCKET\n", "BY SOCKET.TCP\n"], got
    # Ruby 3.4's TCPSocket.new and Socket.tcp resolve names in their own Happy Eyeballs
    # threads without asking the scheduler; before 3.4 both go through address_resolve.
    refute_empty resolved, "TCPSocket.new(\"localhost\", ...) did not call address_resolve" if RUBY_VERSION < "3.4"
    resolved.each do |host, addresses|
      assert_equal "localhost", host
      assert_includes addresses, "127.0.0.1"
    end
  end

  def test_address_resolve_hook_directly
    addresses = with_scheduler do |scheduler|
      addresses = nil
      schedule_fiber { addresses = scheduler.address_resolve("localhost") }
      Fiber.set_scheduler(nil)
      addresses
    end
    assert_kind_of Array, addresses
    assert_includes addresses, "127.0.0.1"
    addresses.each { |address| assert_kind_of String, address }
  end

  def test_connect_refused
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    server.close
    error = with_scheduler do
      error = nil
      schedule_fiber { error = assert_raises(Errno::ECONNREFUSED) { TCPSocket.new("127.0.0.1", port) } }
      Fiber.set_scheduler(nil)
      error
    end
    assert_kind_of Errno::ECONNREFUSED, error
  end

  def test_connection_reset_while_reading
    error = with_scheduler do
      server = TCPServer.new("127.0.0.1", 0)
      error = nil
      schedule_fiber do
        peer = server.accept
        sleep 0.01 # the client is now waiting in read
        peer.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
        peer.close
      end
      schedule_fiber do
        client = TCPSocket.new("127.0.0.1", server.addr[1])
        error = assert_raises(Errno::ECONNRESET) { client.read(10) }
        client.close
      end
      Fiber.set_scheduler(nil)
      server.close
      error
    end
    assert_kind_of Errno::ECONNRESET, error
  end

  def test_reset_errors_on_write
    error = with_scheduler do
      server = TCPServer.new("127.0.0.1", 0)
      error = nil
      schedule_fiber do
        peer = server.accept
        peer.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
        peer.close
      end
      schedule_fiber do
        client = nil
        # The reset may already be reported by connect: it raced with the peer's close.
        error = assert_raises(Errno::ECONNRESET, Errno::EPIPE) do
          client = TCPSocket.new("127.0.0.1", server.addr[1])
          sleep 0.01
          100.times { client.write("x" * 65_536) }
        end
        client&.close
      end
      Fiber.set_scheduler(nil)
      server.close
      error
    end
    assert_kind_of SystemCallError, error
  end
end
