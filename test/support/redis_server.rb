# frozen_string_literal: true

require_relative "local_server"

# A throwaway redis-server on 127.0.0.1 and a free port, nothing saved to disk. Binary:
# redis-server (Debian package redis-server).
class RedisServer < LocalServer::Server
  def initialize
    @binary = LocalServer.executable("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")
    return if @binary

    raise LocalServer::Unavailable, "no redis-server (Debian package redis-server; bin/setup installs it)"
  end

  # Keyword arguments for Redis.new.
  def params
    { host: "127.0.0.1", port: @port }
  end

  private

  def description
    "redis-server"
  end

  def command
    [@binary, "--port", @port.to_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
     "--daemonize", "no", "--dir", @dir, "--maxclients", "1000"]
  end

  def ready?
    socket = TCPSocket.new("127.0.0.1", @port)
    socket.write("PING\r\n")
    socket.wait_readable(1) && socket.readpartial(64).start_with?("+PONG")
  rescue SystemCallError, IOError
    false
  ensure
    socket&.close
  end
end
