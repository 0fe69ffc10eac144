# frozen_string_literal: true

require_relative "rack_helper"

# rack.hijack: the app takes the socket, before the response (full) or after the head (partial);
# a WebSocket-style echo works both ways while other connections are served.
class TestRackHijack < Minitest::Test
  include RackServerHelper

  UPGRADE = "GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"

  # Echoes 4-byte messages (Rack::Lint's wrapper of the socket has read, not gets).
  def self.echo(io)
    while (message = io.read(4))
      io.write("echo: #{message}")
    end
  ensure
    io.close
  end

  def test_full_hijack_hands_the_socket_to_the_app
    server = start_server do |env|
      next [200, { "content-type" => "text/plain" }, ["plain"]] unless env["PATH_INFO"] == "/echo"

      io = env["rack.hijack"].call
      io.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
      self.class.echo(io)
      [200, {}, []] # ignored: the app owns the socket
    end
    assert_echoes(server)
  end

  def test_partial_hijack_writes_the_head_then_hands_the_socket_to_the_callback
    server = start_server do |env|
      next [200, { "content-type" => "text/plain" }, ["plain"]] unless env["PATH_INFO"] == "/echo"

      [101, { "upgrade" => "echo", "rack.hijack" => ->(io) { self.class.echo(io) } }, []]
    end
    assert_echoes(server)
  end

  def assert_echoes(server)
    socket = connect(server)
    socket.write(UPGRADE)
    status, headers, = read_response(socket, head: true)
    assert_equal [101, "echo"], [status, headers["upgrade"]]
    Net::HTTP.start("127.0.0.1", server.port) { |http| assert_equal "plain", http.get("/").body } # served meanwhile
    %w[one two].each do |word|
      socket.write("#{word}\n")
      assert_equal "echo: #{word}\n", socket.gets
    end
    socket.close_write
    assert_nil socket.gets
  ensure
    socket&.close
  end
end
