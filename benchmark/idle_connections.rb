# frozen_string_literal: true

# Memory workload: 10,000 idle keep-alive TCP connections over loopback, one waiter each
# blocked in readpartial. Each mode runs in a fresh child process that accepts every connection
# first, then starts the waiters; the figure is the growth of its VmRSS (after GC.start) per
# connection, so it is what a waiting fiber (or thread) costs, not the socket. The client ends
# live in this process; once measured, each gets a byte and every waiter must return it.
# Modes: Fiber.schedule and UringMachine.spin under our scheduler, Async tasks (when
# installed), a thread per connection.
require "rbconfig"
require "socket"
require_relative "harness"

module IdleConnectionsBench
  CONNECTIONS = Bench.scaled(10_000)

  # Our modes' code, START being the call that makes each fiber.
  OURS = <<~RUBY
    require "uring_machine"
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    measure.call { conns.each { |c| START { wait.call(c) } } }
    Fiber.set_scheduler(nil)
  RUBY
  # name => the code the child runs: it gets `conns` (the accepted sockets), `wait` (the body
  # of every waiter) and `measure` (to call once every waiter waits, inside the event loop).
  MODES = {
    "scheduler" => OURS.sub("START", "Fiber.schedule"),
    "spin" => OURS.sub("START", "UringMachine.spin"),
    "async" => <<~RUBY,
      require "async"
      Async { |top| measure.call { conns.each { |c| top.async { wait.call(c) } } } }
    RUBY
    "threads" => <<~RUBY
      threads = nil
      measure.call do
        threads = conns.map { |c| Thread.new { wait.call(c) } }
        Thread.pass until threads.all? { |t| t.status == "sleep" }
      end
      threads.each(&:join)
    RUBY
  }.freeze

  # The child: accepts +count+ connections on a port it prints, measures around the mode's
  # waiters, prints "KB_BEFORE KB_AFTER", and ends once each waiter has read its byte.
  CHILD = <<~'RUBY'
    count = Integer(ARGV.fetch(0))
    mode = ARGV.fetch(1)
    require "socket"
    rss = -> { GC.start; File.read("/proc/self/status")[/^VmRSS:\s+(\d+)/, 1].to_i }
    server = TCPServer.new("127.0.0.1", 0)
    $stdout.puts server.local_address.ip_port
    $stdout.flush
    conns = Array.new(count) { server.accept }
    server.close
    got = 0
    wait = lambda do |c|
      got += 1 if c.readpartial(16) == "x"
    end
    measure = lambda do |&start|
      before = rss.call
      start.call
      $stdout.puts "#{before} #{rss.call}"
      $stdout.flush
    end
    eval(MODE_CODE)
    abort "#{got} of #{count} waiters read their byte" unless got == count
  RUBY

  module_function

  def async_loads?
    system(RbConfig.ruby, "-e", 'require "async"', err: File::NULL)
  end

  # Runs +mode+ in a child; returns KB per connection.
  def measure(mode)
    code = "MODE_CODE = #{MODES.fetch(mode).dump}\n#{CHILD}"
    IO.popen([RbConfig.ruby, *$LOAD_PATH.flat_map { |d| ["-I", d] }, "-e", code, CONNECTIONS.to_s, mode], "r+") do |child|
      port = Integer(child.gets)
      clients = Array.new(CONNECTIONS) { TCPSocket.new("127.0.0.1", port) }
      line = child.gets or raise "#{mode}: the child ended before measuring"
      before, after = line.split.map { |kb| Integer(kb) }
      clients.each { |c| c.write("x") }
      child.read
      clients.each(&:close)
      (after - before).fdiv(CONNECTIONS)
    end.tap { raise "#{mode}: the child failed (#{$?})" unless $?.success? }
  end

  def run
    modes = MODES.keys
    unless async_loads?
      puts "async: not installed"
      modes -= ["async"]
    end
    puts "idle_connections: #{CONNECTIONS} idle TCP connections, one waiter each in readpartial, " \
         "RSS growth after GC.start, best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    best = {}
    Bench::RUNS.times { modes.each { |m| best[m] = [best[m], measure(m)].compact.min } }
    base = best["async"] || best["threads"]
    puts format("%-10s %12s %14s %9s", "mode", "KB/conn", "MB total", "/#{best.key?("async") ? "async" : "threads"}")
    best.each do |mode, kb|
      puts format("%-10s %12.2f %14.1f %9.3f", mode, kb, kb * CONNECTIONS / 1024, kb / base)
    end
  end
end

IdleConnectionsBench.run if $PROGRAM_NAME == __FILE__
