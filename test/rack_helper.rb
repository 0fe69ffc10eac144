# frozen_string_literal: true

require_relative "test_helper"
require "net/http"

begin
  require "rack"
  require "rack/lint"
  require "uring_machine/rack"
rescue LoadError => e
  RACK_LOAD_ERROR = e
end

# The Rack server's tests: a server on a free loopback port in a thread of the test process
# (its own scheduler there), every app wrapped in Rack::Lint; raw sockets and net/http talk to
# it. Skips, saying why, where Debian's rack does not load on this Ruby.
module RackServerHelper
  # A log that keeps its lines and lets a test wait for one.
  class Log
    def initialize
      @lines = Queue.new
    end

    def puts(*lines)
      lines.flatten.each { |line| @lines << line.to_s }
    end

    # The next line that matches +pattern+ (waits for it).
    def wait_for(pattern)
      loop do
        line = @lines.pop
        return line if line.match?(pattern)
      end
    end
  end

  def setup
    super
    skip_with_reason("rack does not load on Ruby #{RUBY_VERSION}: #{RACK_LOAD_ERROR.message}") if defined?(RACK_LOAD_ERROR)
    @servers = []
  end

  def teardown
    @servers&.each do |server, thread|
      server.stop
      thread.join
    end
    super
  end

  def skip_with_reason(reason)
    warn "\nSKIP #{self.class}##{name}: #{reason}"
    skip reason
  end

  # Starts a server for +app+ (wrapped in Rack::Lint) and returns it.
  def start_server(app = nil, lint: true, **options, &block)
    app ||= block
    @log = Log.new
    server = UringMachine::Rack::Server.new(lint ? ::Rack::Lint.new(app) : app, host: "127.0.0.1", port: 0, log: @log, **options)
    server.bind
    @servers << [server, Thread.new { server.run }]
    server
  end

  attr_reader :log

  def connect(server)
    TCPSocket.new("127.0.0.1", server.port)
  end

  # One response read off +socket+: [status, headers (lower-case names), body]. Bodies by
  # Content-Length, chunked, or up to EOF; none for +head+ requests.
  def read_response(socket, head: false)
    status = socket.gets or return nil
    headers = {}
    while (line = socket.gets("\r\n", chomp: true)) && !line.empty?
      name, value = line.split(": ", 2)
      headers[name.downcase] = value
    end
    code = status[/\AHTTP\/1\.\d (\d{3})/, 1].to_i
    [code, headers, head || [204, 304].include?(code) ? "" : read_body(socket, headers)]
  end

  def read_body(socket, headers)
    return socket.read(Integer(headers["content-length"])) if headers["content-length"]
    return socket.read.to_s unless headers["transfer-encoding"] == "chunked"

    body = +""
    while (size = Integer(socket.gets.strip, 16)).positive?
      body << socket.read(size)
      socket.read(2)
    end
    socket.read(2)
    body
  end

  def hello_app
    ->(env) { [200, { "content-type" => "text/plain" }, ["hello #{env['PATH_INFO']}"]] }
  end
end
