# frozen_string_literal: true

require_relative "local_server"

# A throwaway redis-server on 127.0.0.1 and a free port, nothing saved to disk. Binary:
# redis-server (Debian package redis-server).
class RedisServer
  attr_reader :port

  def self.start
    new.tap(&:start)
  end

  def initialize
    @binary = LocalServer.executable("/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")
    return if @binary

    raise LocalServer::Unavailable, "no redis-server (Debian package redis-server; bin/setup installs it)"
  end

  def start
    @dir = Dir.mktmpdir("um-redis-")
    @log = File.join(@dir, "server.log")
    @port = LocalServer.free_port
    @server = LocalServer::Child.new(
      [@binary, "--port", @port.to_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
       "--daemonize", "no", "--dir", @dir, "--maxclients", "1000"],
      log: @log, chdir: @dir
    )
    LocalServer.wait_until("redis-server on port #{@port}", process: @server, log: @log) { ping? }
    self
  rescue StandardError
    stop
    raise
  end

  # Keyword arguments for Redis.new.
  def params
    { host: "127.0.0.1", port: @port }
  end

  def stop
    @server&.stop(:TERM)
    @server = nil
    FileUtils.rm_rf(@dir) if @dir
    @dir = nil
  end

  private

  def ping?
    socket = TCPSocket.new("127.0.0.1", @port)
    socket.write("PING\r\n")
    socket.wait_readable(1) && socket.readpartial(64).start_with?("+PONG")
  rescue SystemCallError, IOError
    false
  ensure
    socket&.close
  end
end
