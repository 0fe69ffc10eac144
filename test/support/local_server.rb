# frozen_string_literal: true

require "socket"
require "tmpdir"
require "fileutils"

# Shared by the server helpers of the integration tests: a free loopback port, a bounded wait,
# a child process that is always stopped. Used outside any scheduler (the test's own thread).
module LocalServer
  # Raised when a server cannot be had here; the tests skip with its message.
  class Unavailable < StandardError; end

  module_function

  # A TCP port on 127.0.0.1 that nobody listens on right now.
  def free_port
    server = TCPServer.new("127.0.0.1", 0)
    server.local_address.ip_port
  ensure
    server&.close
  end

  # Polls the block every few milliseconds until it returns a truthy value (returned), or
  # raises after +limit+ seconds naming +what+ was awaited.
  def wait_until(what, limit: 20, process: nil, log: nil)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + limit
    loop do
      value = yield
      return value if value
      raise "#{what}: the process exited (#{process.status_text})#{log_tail(log)}" if process && !process.alive?
      raise "#{what}: not within #{limit}s#{log_tail(log)}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.02
    end
  end

  def log_tail(log)
    return "" unless log && File.exist?(log)

    "; its log ends with:\n#{File.readlines(log).last(15).join}"
  end

  # The first of +paths+ (glob patterns allowed) that is an executable file, else nil.
  def executable(*paths)
    paths.flat_map { |pattern| Dir.glob(pattern).sort.reverse }.find { |path| File.file?(path) && File.executable?(path) }
  end

  # Can this TCP port be connected to?
  def listening?(port)
    TCPSocket.new("127.0.0.1", port).close
    true
  rescue SystemCallError
    false
  end

  # A child process, its output in +log+, stopped by #stop: +signal+, then KILL after a while.
  class Child
    attr_reader :pid

    def initialize(argv, log:, chdir: Dir.pwd, env: {})
      @log = log
      @pid = Process.spawn(env, *argv, chdir: chdir, in: File::NULL, %i[out err] => [log, "a"], pgroup: true)
      @status = nil
    end

    def alive?
      return false if @status

      @status = Process.wait2(@pid, Process::WNOHANG)&.last
      @status.nil?
    end

    def success?
      !alive? && @status.success?
    end

    def status_text
      @status ? @status.inspect : "running"
    end

    def stop(signal = :TERM, limit: 10)
      return unless alive?

      Process.kill(signal, @pid)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + limit
      sleep 0.02 while alive? && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
      return unless alive?

      Process.kill(:KILL, -@pid) # the whole process group
      Process.wait(@pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
  end

  # The life of a throwaway server: a private directory holding its log, a free port, the child
  # process and a wait until it answers. #stop (also run when #start fails) ends the process and
  # removes the directory. A subclass defines #description, #command and #ready?, and may define
  # #prepare (runs in the directory before the port is chosen), #child_env and #stop_signal.
  class Server
    attr_reader :port

    # The server process's id (nil when not started).
    def pid
      @server&.pid
    end

    def self.start(...)
      new(...).tap(&:start)
    end

    def start
      @dir = Dir.mktmpdir("um-#{description.split.first.downcase}-")
      @log = File.join(@dir, "server.log")
      prepare
      @port = LocalServer.free_port
      @server = Child.new(command, log: @log, chdir: @dir, env: child_env)
      LocalServer.wait_until("#{description} on port #{@port}", process: @server, log: @log) { ready? }
      self
    rescue StandardError
      stop
      raise
    end

    def stop
      @server&.stop(stop_signal)
      @server = nil
      FileUtils.rm_rf(@dir) if @dir
      @dir = nil
    end

    private

    def prepare; end

    def child_env
      {}
    end

    def stop_signal
      :TERM
    end
  end
end
