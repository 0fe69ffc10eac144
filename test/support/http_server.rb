# frozen_string_literal: true

require_relative "local_server"

# A tiny HTTP/1.1 server on 127.0.0.1 (a thread per connection, no scheduler), answering every
# request after +delay+ seconds with "hello <path>". Enough for net/http; counts the requests
# it is answering at once, to show overlap.
class SlowHTTPServer
  attr_reader :port, :most_at_once

  def initialize(delay:)
    @delay = delay
    @listener = TCPServer.new("127.0.0.1", 0)
    @port = @listener.local_address.ip_port
    @lock = Thread::Mutex.new
    @at_once = 0
    @most_at_once = 0
    @connections = []
    @acceptor = Thread.new { accept_loop }
  end

  def stop
    @listener.close
    @acceptor.join(5)
    @lock.synchronize { @connections.dup }.each { |thread| thread.join(5) }
  end

  private

  def accept_loop
    Thread.current.report_on_exception = false
    loop do
      client = @listener.accept
      @lock.synchronize { @connections << Thread.new(client) { |socket| serve(socket) } }
    end
  rescue IOError, SystemCallError
    nil # closed by stop
  end

  def serve(socket)
    Thread.current.report_on_exception = false
    while (request_line = socket.gets("\r\n"))
      nil until ["\r\n", nil].include?(socket.gets("\r\n")) # headers; no request bodies here
      path = request_line.split[1]
      respond(socket, "hello #{path}")
    end
  rescue IOError, SystemCallError
    nil
  ensure
    socket.close
  end

  def respond(socket, body)
    @lock.synchronize { @most_at_once = [@most_at_once, @at_once += 1].max }
    sleep @delay
    socket.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: #{body.bytesize}\r\n\r\n#{body}")
  ensure
    @lock.synchronize { @at_once -= 1 }
  end
end
