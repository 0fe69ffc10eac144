# frozen_string_literal: true

require_relative "test_helper"

class TestNet < MachineTest
  def listening_socket(host, family)
    fd = machine.socket(family, Socket::SOCK_STREAM)
    sock = Socket.for_fd(fd)
    sock.setsockopt(Socket::SOL_SOCKET, Socket::SO_REUSEADDR, true)
    machine.bind(fd, host, 0)
    machine.listen(fd)
    [sock, sock.local_address.ip_port]
  end

  def echo_roundtrip(host, family)
    server, port = listening_socket(host, family)
    server_fiber = machine.spin do
      conn = machine.accept(server)
      buffer = +""
      n = machine.recv(conn, buffer, 100)
      machine.send(conn, buffer, n)
      machine.close(conn)
    end
    client = machine.socket(family, Socket::SOCK_STREAM)
    machine.connect(client, host, port)
    machine.send(client, "ping")
    buffer = +""
    assert_equal 4, machine.recv(client, buffer, 100)
    assert_equal "ping", buffer
    assert_equal 0, machine.recv(client, buffer, 100), "server closed"
    machine.join(server_fiber)
    machine.close(client)
  ensure
    server&.close
  end

  def test_tcp_echo_ipv4
    echo_roundtrip("127.0.0.1", Socket::AF_INET)
  end

  def test_tcp_echo_ipv6
    skip "IPv6 loopback is not configured on this machine" unless Socket.ip_address_list.any?(&:ipv6_loopback?)
    echo_roundtrip("::1", Socket::AF_INET6)
  end

  def test_connect_refused
    server, port = listening_socket("127.0.0.1", Socket::AF_INET)
    server.close
    client = machine.socket(Socket::AF_INET, Socket::SOCK_STREAM)
    assert_raises(Errno::ECONNREFUSED) { machine.connect(client, "127.0.0.1", port) }
    machine.close(client)
  end

  def test_connect_to_a_name_and_bad_port
    client = machine.socket(Socket::AF_INET, Socket::SOCK_STREAM)
    assert_raises(ArgumentError) { machine.connect(client, "127.0.0.1", 70_000) }
    assert_raises(TypeError) { machine.connect(client, 127, 80) }
    machine.close(client)
  end

  def test_many_concurrent_connections_with_ruby_sockets
    server = TCPServer.new("127.0.0.1", 0)
    port = server.local_address.ip_port
    count = 200
    acceptor = machine.spin do
      handlers = Array.new(count) do
        conn = machine.accept(server)
        machine.spin do
          buffer = +""
          machine.recv(conn, buffer, 100)
          machine.send(conn, buffer.upcase)
          machine.close(conn)
        end
      end
      machine.join(*handlers)
    end
    clients = Array.new(count) do |i|
      machine.spin do
        fd = machine.socket(Socket::AF_INET, Socket::SOCK_STREAM)
        machine.connect(fd, "127.0.0.1", port)
        machine.send(fd, "client #{i}")
        buffer = +""
        machine.recv(fd, buffer, 100)
        machine.close(fd)
        buffer
      end
    end
    replies = machine.join(*clients)
    machine.join(acceptor)
    assert_equal Array.new(count) { |i| "CLIENT #{i}" }, replies
  ensure
    server&.close
  end

  def test_accept_each
    server = TCPServer.new("127.0.0.1", 0)
    port = server.local_address.ip_port
    accepted = []
    acceptor = machine.spin do
      machine.accept_each(server) do |fd|
        accepted << fd
        break if accepted.size == 3
      end
    end
    clients = Array.new(3) { TCPSocket.new("127.0.0.1", port) }
    machine.join(acceptor)
    assert_equal 3, accepted.size
    accepted.each { |fd| machine.close(fd) }
    clients.each(&:close)
  ensure
    server&.close
  end

  def test_shutdown
    a, b = UNIXSocket.pair
    machine.shutdown(a, Socket::SHUT_WR)
    assert_equal 0, machine.recv(b, +"", 10)
  ensure
    [a, b].each { |s| s&.close }
  end
end
