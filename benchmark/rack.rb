# frozen_string_literal: true

# Rack apps served by real Rack servers, loaded by wrk (another process, loopback), every mode
# in the same run, one after another:
#   uring_machine       UringMachine::Rack::Server, one process
#   uring_machine-2w    the same with workers: 2
#   puma-t5, puma-t32   Puma (Debian's puma, 5.6) with 5 and 32 threads, one process
# Two apps, each the same config.ru for every server, without middleware (RACK_ENV=none):
#   hello         a lambda answering "Hello, world!"
#   sinatra-pg    examples/sinatra_pg's GET /sequel/sleep?seconds=0.01 (one SELECT pg_sleep(0.01)
#                 through Sequel, a pool of DB_POOL=40 connections per process) against a
#                 PostgreSQL started for the run (test/support/postgres_server.rb)
#
#   BENCH_RACK_SECONDS=5        wrk's duration per mode (default 5 x BENCH_SCALE, at least 1)
#   BENCH_RACK_CONNECTIONS=200
# Needs wrk; the Puma modes need puma and rack; sinatra-pg needs ruby-sinatra, ruby-sequel,
# ruby-pg and postgresql. Each missing piece is said and skipped.
require "socket"
require "tmpdir"
require "etc"
require_relative "harness"

module RackBench
  SECONDS = Integer(ENV.fetch("BENCH_RACK_SECONDS", [(5 * Bench::SCALE).round, 1].max))
  CONNECTIONS = Integer(ENV.fetch("BENCH_RACK_CONNECTIONS", "200"))
  LIB = File.expand_path("../lib", __dir__)
  CONFIG_RU = %(run ->(env) { [200, { "content-type" => "text/plain" }, ["Hello, world!"]] }\n)
  SINATRA_PG = File.expand_path("../examples/sinatra_pg/config.ru", __dir__)
  DB_POOL = "40" # per process: 2 workers stay within PostgreSQL's 100 connections
  # Our server, from the same config.ru (rack's Builder when it loads, else the lambda itself).
  OURS = <<~'RUBY'
    require "uring_machine/rack"
    config, workers, port = ARGV
    app = begin
      require "rack"
      Rack::Builder.parse_file(config).then { |parsed| parsed.is_a?(Array) ? parsed.first : parsed }
    rescue LoadError
      eval(File.read(config).sub(/\Arun /, "")) # rubocop:disable Security/Eval
    end
    UringMachine::Rack::Server.new(app, host: "127.0.0.1", port: Integer(port), workers: Integer(workers), log: nil).run
  RUBY

  module_function

  def free_port
    probe = TCPServer.new("127.0.0.1", 0)
    probe.addr[1]
  ensure
    probe&.close
  end

  # Starts +command+ in a process group of its own and returns its pid once +port+ accepts. The
  # gem is on RUBYLIB for Puma too: examples/sinatra_pg requires it (its pg pool).
  def start(command, port, env)
    pid = spawn({ "RACK_ENV" => "none", "RUBYLIB" => LIB }.merge(env), *command, out: File::NULL, err: File::NULL, pgroup: true)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 20
    begin
      TCPSocket.new("127.0.0.1", port).close
    rescue SystemCallError
      raise "#{command.join(' ')} did not start" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.05
      retry
    end
    pid
  end

  def stop(pid)
    Process.kill(:TERM, -pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  # name => command(config, port)
  def modes
    modes = {
      "uring_machine" => ->(config, port) { [RbConfig.ruby, "-I", LIB, "-e", OURS, config, "0", port.to_s] },
      "uring_machine-2w" => ->(config, port) { [RbConfig.ruby, "-I", LIB, "-e", OURS, config, "2", port.to_s] }
    }
    puma = ENV.fetch("PATH", "").split(":").map { |dir| File.join(dir, "puma") }.find { |f| File.executable?(f) }
    if puma
      [5, 32].each do |threads|
        modes["puma-t#{threads}"] = lambda do |config, port|
          [puma, "--quiet", "-e", "none", "-t", "#{threads}:#{threads}", "-b", "tcp://127.0.0.1:#{port}", config]
        end
      end
    else
      puts "puma: not installed (Debian: puma), skipped"
    end
    modes
  end

  # [requests/s, mean latency, p99 latency, errors] of one wrk run.
  def wrk(port, path)
    out = IO.popen(["wrk", "-t1", "-c#{CONNECTIONS}", "-d#{SECONDS}s", "--latency", "http://127.0.0.1:#{port}#{path}"],
                   err: %i[child out], &:read)
    rps = out[/Requests\/sec:\s+([\d.]+)/, 1] or raise "wrk failed:\n#{out}"
    errors = [out[/Socket errors:.*$/], out[/Non-2xx.*$/]].compact.join(", ")
    [Float(rps), out[/Latency\s+(\S+)/, 1], out[/^\s+99%\s+(\S+)/, 1], errors]
  end

  def run
    unless system("wrk -v > /dev/null 2>&1") || $?.exitstatus == 1 # wrk -v exits 1
      puts "rack: wrk not installed (Debian: wrk), skipped"
      return
    end
    Dir.mktmpdir("um-bench-rack") do |dir|
      config = File.join(dir, "config.ru")
      File.write(config, CONFIG_RU)
      workload("hello", config, "/", {})
      with_postgres { |url| workload("sinatra-pg", SINATRA_PG, "/sequel/sleep?seconds=0.01", "DATABASE_URL" => url, "DB_POOL" => DB_POOL) }
    end
  end

  # Every mode on one app, then the table.
  def workload(name, config, path, env)
    puts "rack #{name}: wrk -t1 -c#{CONNECTIONS} -d#{SECONDS}s GET #{path} on loopback, one run per mode, " \
         "ruby #{RUBY_VERSION}, #{Etc.nprocessors} cores (ratios: to the best Puma mode)"
    results = modes.to_h do |mode, command|
      port = free_port
      pid = start(command.call(config, port), port, env)
      begin
        [mode, wrk(port, path)]
      ensure
        stop(pid)
      end
    end
    report(results)
  end

  # Yields the URL of a PostgreSQL started for the workload, or says why there is none.
  def with_postgres
    %w[sinatra/base sequel pg].each { |library| require library }
    require_relative "../test/support/postgres_server"
    server = PostgresServer.new.tap(&:start)
    params = server.params
    yield "postgres://#{params[:user]}@#{params[:host]}:#{params[:port]}/#{params[:dbname]}"
  rescue LoadError, LocalServer::Unavailable => e
    puts "rack sinatra-pg: skipped (#{e.message})"
  ensure
    server&.stop
  end

  def report(results)
    puma = results.select { |name, _| name.start_with?("puma") }.values.map(&:first).max
    puts format("%-18s %10s %7s %10s %10s  %s", "mode", "req/s", "/puma", "latency", "p99", "errors")
    results.each do |name, (rps, latency, p99, errors)|
      puts format("%-18s %10.0f %7s %10s %10s  %s", name, rps, puma ? format("%.2f", rps / puma) : "-", latency, p99, errors)
    end
  end
end

RackBench.run if $PROGRAM_NAME == __FILE__
