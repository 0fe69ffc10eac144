# frozen_string_literal: true

require_relative "rack_helper"
require_relative "support/child_ruby"
require_relative "support/rack_processes"
require_relative "support/local_server"

# The server as a process: a graceful stop on TERM/INT (the request in flight finishes, exit
# status 0), workers restarted when they die, and `rackup -s uring_machine`.
class TestRackProcesses < Minitest::Test
  include RackServerHelper
  include RackProcesses

  # A server process: /slow tells the test it started (a line on stdout) and waits for a line
  # on stdin before answering; / answers with the worker's pid.
  PROGRAM = <<~'RUBY'
    require "uring_machine/rack"
    $stdout.sync = true
    app = lambda do |env|
      if env["PATH_INFO"] == "/slow"
        puts "started"
        [200, { "content-type" => "text/plain" }, ["finished after #{$stdin.gets.strip}"]]
      else
        [200, { "content-type" => "text/plain" }, [Process.pid.to_s]]
      end
    end
    UringMachine::Rack::Server.new(app, host: "127.0.0.1", port: 0, workers: Integer(ARGV[0])).run
    puts "exited normally"
  RUBY

  def test_term_finishes_the_request_in_flight_then_exits_0
    with_server_process("0") do |pid, port, stdin, stdout, stderr|
      socket = TCPSocket.new("127.0.0.1", port)
      socket.write("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
      assert_equal "started\n", line_matching(stdout, /started/)
      Process.kill(:TERM, pid)
      assert_match(/stopping .*: 1 request in flight/, line_matching(stderr, /stopping/))
      assert_raises(Errno::ECONNREFUSED) { TCPSocket.new("127.0.0.1", port) }
      stdin.puts "the stop"
      status, headers, body = read_response(socket)
      assert_equal [200, "close", "finished after the stop"], [status, headers["connection"], body]
      assert_equal 0, reap(pid).exitstatus
      assert_equal "exited normally\n", stdout.gets
      socket.close
    end
  end

  def test_int_stops_an_idle_server_with_status_0
    with_server_process("0") do |pid, port, _stdin, stdout, _stderr|
      Net::HTTP.start("127.0.0.1", port) do |http|
        assert_equal pid.to_s, http.get("/").body
        Process.kill(:INT, pid)
        assert_equal 0, reap(pid).exitstatus
      end
      assert_equal "exited normally\n", stdout.gets
    end
  end

  def test_workers_that_die_are_restarted
    with_server_process("2") do |master, port, _stdin, stdout, stderr|
      workers = line_matching(stderr, /workers started/)[/workers started: ([\d ]+)/, 1].split.map(&:to_i)
      assert_equal workers.sort, children_of(master).sort
      assert_equal 2, workers.size
      workers.each { |worker| Process.kill(:KILL, worker) }
      served_by = Integer(Net::HTTP.get(URI("http://127.0.0.1:#{port}/")))
      refute_includes workers, served_by
      line_matching(stderr, /worker \d+ died/)
      Process.kill(:TERM, master)
      assert_equal 0, reap(master).exitstatus
      assert_equal "exited normally\n", stdout.gets
    end
  end

  def test_rackup_runs_a_config_ru_on_uring_machine
    rackup = rackup_path
    rackup_loads!
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "config.ru"), <<~RUBY)
        run ->(env) { [200, { "content-type" => "text/plain" }, ["from config.ru on \#{env['SERVER_SOFTWARE'] || 'uring_machine'}"]] }
      RUBY
      command = ChildRuby.command(rackup, "-s", "uring_machine", "-o", "127.0.0.1", "-p", "0", File.join(dir, "config.ru"))
      with_server_process(command: command) do |pid, port, _stdin, _stdout, _stderr|
        assert_equal "from config.ru on uring_machine", Net::HTTP.get(URI("http://127.0.0.1:#{port}/"))
        Process.kill(:TERM, pid)
        assert_equal 0, reap(pid).exitstatus
      end
    end
  end

  # A worker stopped on its own (TERM to it alone) is the one that stops, and is replaced.
  def test_term_to_one_worker_stops_that_worker_only
    with_server_process("2") do |master, port, _stdin, _stdout, stderr|
      first, second = workers_serving(stderr, 2)
      Process.kill(:TERM, first)
      assert_match(/stopping \(pid #{first}\)/, line_matching(stderr, /stopping/))
      assert_match(/worker #{first} died .*exit 0/, line_matching(stderr, /died/))
      assert_includes children_of(master), second
      assert_equal "200", Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/")).code
      Process.kill(:TERM, master)
      assert_equal 0, reap(master).exitstatus
    end
  end

  # Rack's autoloads are loaded before the first request (fibers racing for one would see it
  # missing): one that is an autoload in a fresh process is loaded once the server ran.
  def test_rack_autoloads_are_loaded_before_serving
    program = <<~'RUBY'
      require "rack"
      require "net/http"
      require "uring_machine/rack"
      name = Rack.constants.find { |constant| Rack.autoload?(constant) }
      server = UringMachine::Rack::Server.new(->(_) { [204, {}, []] }, host: "127.0.0.1", port: 0, log: nil)
      thread = Thread.new { server.run }
      Net::HTTP.get_response(URI("http://127.0.0.1:#{server.port}/"))
      server.stop
      thread.join
      puts [name.nil?, Rack.autoload?(name).nil?].inspect
    RUBY
    result = ChildRuby.run("-e", program, limit: 30)
    assert_equal "[false, true]\n", result.out, result.err
  end

  # Workers do not outlive their master, however it ends.
  def test_workers_stop_when_the_master_is_killed
    with_server_process("2") do |master, _port, _stdin, _stdout, stderr|
      workers = workers_serving(stderr, 2)
      Process.kill(:KILL, master)
      assert_equal :KILL, Signal.signame(reap(master).termsig).to_sym
      LocalServer.wait_until("the workers' exit", limit: 30) { workers.none? { |pid| alive?(pid) } }
    end
  end

  def alive?(pid)
    Process.kill(0, pid)
    true
  rescue Errno::ESRCH
    false
  end

  # The pids of the master's +count+ workers, once each said it serves (their lines and the
  # master's come in any order).
  def workers_serving(stderr, count)
    started = nil
    serving = []
    until started && serving.size == count
      line = line_matching(stderr, /workers started|serving/)
      started ||= line[/workers started: ([\d ]+)/, 1]&.split&.map(&:to_i)
      serving << line[/worker (\d+) serving/, 1] if line.include?("serving")
    end
    started
  end

  # The pids of +pid+'s children (the workers forked so far), from /proc.
  def children_of(pid)
    Dir.glob("/proc/#{pid}/task/*/children").flat_map { |file| File.read(file).split.map(&:to_i) }
  end
end
