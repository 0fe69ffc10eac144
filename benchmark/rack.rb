# frozen_string_literal: true

# Rack apps served by real Rack servers, loaded by wrk (another process, loopback, --latency),
# every mode in the same run, one after another:
#   uring_machine       UringMachine::Rack::Server, one process (one serving thread)
#   uring_machine-2w    the same with workers: 2 (two forked processes)
#   uring_machine-2t    the same with threads: 2 (one process, two serving threads)
#   puma-t5, puma-t32   Puma (Debian's puma, 5.6) with 5 and 32 threads, one process
#   puma-w1-t5, ...     Puma in cluster mode: 1 and 2 workers, 5 and 32 threads each
#   async-http          async-http 0.59 on Async 1.30 (Debian), one process, with a handler
#                       written for its own API (benchmark/rack_peers/): no Rack
#   uring_machine-rubyX our server, one process, on another Ruby (BENCH_RACK_RUBY; hello only)
# Three apps, each the same config.ru for every Rack server, without middleware (RACK_ENV=none):
#   hello         a lambda answering "Hello, world!"
#   pg            rack_pg.ru: GET /?seconds=0.01, one SELECT pg_sleep(0.01) through pg directly
#                 from a pool of DB_POOL=40 connections per process, no framework: the work of
#                 async-http's handler (rack_peers/async_http_pg.rb), which runs in its place
#   sinatra_pg    examples/sinatra_pg's GET /sequel/sleep?seconds=0.01 (one SELECT pg_sleep(0.01)
#                 through Sequel, a pool of DB_POOL=40 connections per process); async-http's row
#                 is its bare handler again (it has no Sinatra). Both pg apps against a
#                 PostgreSQL started for the run (test/support/postgres_server.rb)
# Each table gives req/s, the ratio to the best Puma mode, wrk's p50 and p99 latency, the
# server's CPU time per request (all its processes; less distorted by a busy machine), then
# the issue's goals (hello >= 1.5x Puma's best and >= async-http; pg and sinatra_pg >= 10x
# puma-t5 and >= async-http with a lower p99 than every Puma mode), each met or missed.
#
#   BENCH_RACK_SECONDS=5        wrk's duration per mode (default 5 x BENCH_SCALE, at least 1)
#   BENCH_RACK_CONNECTIONS=200
#   BENCH_RUNS=1                runs per mode, round-robin, the best (by req/s) kept with its
#                               latency and CPU figures
#   BENCH_RACK_RUBY=RUBY:LIBDIR another Ruby for our server's hello, with a lib/ whose
#                               uring_machine.so is built for it
# Needs wrk; the Puma modes need puma and rack; async-http needs ruby-async-http; pg and
# sinatra_pg need ruby-sinatra, ruby-sequel, ruby-pg and postgresql. Each missing piece is said
# and skipped.
require "socket"
require "net/http"
require "tmpdir"
require "etc"
require_relative "harness"

module RackBench
  SECONDS = Integer(ENV.fetch("BENCH_RACK_SECONDS", [(5 * Bench::SCALE).round, 1].max))
  CONNECTIONS = Integer(ENV.fetch("BENCH_RACK_CONNECTIONS", "200"))
  RUNS = Integer(ENV.fetch("BENCH_RUNS", "1"))
  LIB = File.expand_path("../lib", __dir__)
  CONFIG_RU = %(run ->(env) { [200, { "content-type" => "text/plain" }, ["Hello, world!"]] }\n)
  PG = File.expand_path("rack_pg.ru", __dir__)
  SINATRA_PG = File.expand_path("../examples/sinatra_pg/config.ru", __dir__)
  PEERS = File.expand_path("rack_peers", __dir__)
  DB_POOL = "40" # per process: 2 workers stay within PostgreSQL's 100 connections
  # Our server, from the same config.ru (rack's Builder when it loads, else the lambda itself).
  OURS = <<~'RUBY'
    require "uring_machine/rack"
    config, workers, threads, port = ARGV
    app = begin
      require "rack"
      Rack::Builder.parse_file(config).then { |parsed| parsed.is_a?(Array) ? parsed.first : parsed }
    rescue LoadError
      eval(File.read(config).sub(/\Arun /, "")) # rubocop:disable Security/Eval
    end
    UringMachine::Rack::Server.new(app, host: "127.0.0.1", port: Integer(port), workers: Integer(workers),
                                                  threads: Integer(threads), log: nil).run
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

  # name => command(config, port) for the workload +app+ (:hello, :pg or :sinatra_pg).
  def modes(app)
    modes = {}
    { "" => [0, 1], "-2w" => [2, 1], "-2t" => [0, 2] }.each do |suffix, (workers, threads)|
      modes["uring_machine#{suffix}"] = ->(config, port) { ours(RbConfig.ruby, LIB, config, workers, threads, port) }
    end
    modes.merge!(puma_modes)
    modes.merge!(async_http_mode(app))
    modes.merge!(other_ruby_mode) if app == :hello
    modes
  end

  def ours(ruby, lib, config, workers, threads, port)
    [ruby, "-I", lib, "-e", OURS, config, workers.to_s, threads.to_s, port.to_s]
  end

  def puma_modes
    puma = ENV.fetch("PATH", "").split(":").map { |dir| File.join(dir, "puma") }.find { |f| File.executable?(f) }
    return {}.tap { puts "puma: not installed (Debian: puma), skipped" } unless puma

    [nil, 1, 2].product([5, 32]).to_h do |workers, threads|
      name = ["puma", ("w#{workers}" if workers), "t#{threads}"].compact.join("-")
      cluster = workers ? ["-w", workers.to_s] : []
      [name, ->(config, port) { [puma, "--quiet", "-e", "none", *cluster, "-t", "#{threads}:#{threads}", "-b", "tcp://127.0.0.1:#{port}", config] }]
    end
  end

  def async_http_mode(app)
    require "async/http/server"
    script = File.join(PEERS, app == :hello ? "async_http_hello.rb" : "async_http_pg.rb")
    { "async-http" => ->(_config, port) { [RbConfig.ruby, script, port.to_s] } }
  rescue LoadError => e
    {}.tap { puts "async-http: #{e.message} (Debian: ruby-async-http), skipped" }
  end

  # BENCH_RACK_RUBY=RUBY:LIBDIR: our server on that Ruby too.
  def other_ruby_mode
    ruby, lib = ENV.fetch("BENCH_RACK_RUBY", "").split(":", 2)
    return {} unless ruby && lib

    version = IO.popen([ruby, "-e", "print RUBY_VERSION"], &:read)
    { "uring_machine-ruby#{version}" => ->(config, port) { ours(ruby, lib, config, 0, 1, port) } }
  end

  # Waits for a first 200 (Puma's cluster workers boot after the port accepts), then loads the
  # server for a second unmeasured (pools fill, code warms).
  def warm_up(port, path)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
    until (Net::HTTP.get_response("127.0.0.1", path, port).code == "200" rescue false) # rubocop:disable Style/RescueModifier
      raise "no 200 from #{path}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.05
    end
    IO.popen(["wrk", "-t1", "-c#{CONNECTIONS}", "-d1s", "http://127.0.0.1:#{port}#{path}"], &:read)
  end

  # The CPU time the processes of group +pgid+ (a server and its workers) have used so far:
  # a cost per request that a shared machine's noise distorts less than requests per second.
  def cpu_seconds(pgid)
    Dir["/proc/[0-9]*/stat"].sum do |file|
      # after "pid (comm)": state ppid pgrp ... utime (12th) stime (13th)
      fields = File.read(file).rpartition(")").last.split
      Integer(fields[2]) == pgid ? Integer(fields[11]) + Integer(fields[12]) : 0
    rescue SystemCallError
      0 # gone meanwhile
    end / Etc.sysconf(Etc::SC_CLK_TCK).to_f
  end

  # [requests/s, p50, p99, errors] of one wrk run.
  def wrk(port, path)
    out = IO.popen(["wrk", "-t1", "-c#{CONNECTIONS}", "-d#{SECONDS}s", "--latency", "http://127.0.0.1:#{port}#{path}"],
                   err: %i[child out], &:read)
    rps = out[/Requests\/sec:\s+([\d.]+)/, 1] or raise "wrk failed:\n#{out}"
    errors = [out[/Socket errors:.*$/], out[/Non-2xx.*$/]].compact.join(", ")
    [Float(rps), out[/^\s+50%\s+(\S+)/, 1], out[/^\s+99%\s+(\S+)/, 1], errors]
  end

  def run
    unless system("wrk -v > /dev/null 2>&1") || $?.exitstatus == 1 # wrk -v exits 1
      puts "rack: wrk not installed (Debian: wrk), skipped"
      return
    end
    Dir.mktmpdir("um-bench-rack") do |dir|
      config = File.join(dir, "config.ru")
      File.write(config, CONFIG_RU)
      workload(:hello, config, "/", {})
      with_postgres do |url|
        env = { "DATABASE_URL" => url, "DB_POOL" => DB_POOL }
        workload(:pg, PG, "/?seconds=0.01", env)
        workload(:sinatra_pg, SINATRA_PG, "/sequel/sleep?seconds=0.01", env)
      end
    end
  end

  # Every mode on one app, then the table.
  def workload(app, config, path, env)
    puts "rack_#{app}: wrk -t1 -c#{CONNECTIONS} -d#{SECONDS}s GET #{path} on loopback, " \
         "#{RUNS == 1 ? 'one run' : "best of #{RUNS}"} per mode, ruby #{RUBY_VERSION}, #{Etc.nprocessors} cores, " \
         "load #{File.read('/proc/loadavg').split.first} (ratios: to the best Puma mode)"
    results = {}
    RUNS.times do
      modes(app).each do |mode, command|
        result = measure(command.call(config, port = free_port), port, path, env)
        results[mode] = result if results[mode].nil? || result[0] > results[mode][0]
      end
    end
    report(results)
    goals(app, results)
  end

  # [requests/s, CPU us per request, p50, p99, errors] of a server started by +command+.
  def measure(command, port, path, env)
    pid = start(command, port, env)
    warm_up(port, path)
    cpu = cpu_seconds(pid)
    rps, *rest = wrk(port, path)
    [rps, (cpu_seconds(pid) - cpu) / (rps * SECONDS) * 1e6, *rest]
  ensure
    stop(pid) if pid
  end

  # Yields the URL of a PostgreSQL started for the workload, or says why there is none.
  def with_postgres
    %w[sinatra/base sequel pg].each { |library| require library }
    require_relative "../test/support/postgres_server"
    server = PostgresServer.new.tap(&:start)
    params = server.params
    yield "postgres://#{params[:user]}@#{params[:host]}:#{params[:port]}/#{params[:dbname]}"
  rescue LoadError, LocalServer::Unavailable => e
    puts "rack_pg: skipped (#{e.message})"
  ensure
    server&.stop
  end

  def report(results)
    puma = results.select { |name, _| name.start_with?("puma") }.values.map(&:first).max
    puts format("%-24s %9s %6s %9s %9s %9s  %s", "mode", "req/s", "/puma", "p50", "p99", "cpu_us/req", "errors")
    results.each do |name, (rps, cpu, p50, p99, errors)|
      puts format("%-24s %9.0f %6s %9s %9s %9.0f  %s", name, rps, puma ? format("%.2f", rps / puma) : "-", p50, p99, cpu, errors)
    end
  end

  # The issue's goals for our best mode, each met or missed (a peer that did not run: no goal);
  # async-http serves in one process, so one process of ours is held against it too.
  def goals(app, results)
    best, (rps, _, _, p99) = results.select { |name, _| name.match?(/\Auring_machine(-\d[wt])?\z/) }.max_by { |_, (r)| r }
    return unless best

    pumas = results.select { |name, _| name.start_with?("puma") }.values
    checks = []
    if app == :hello
      checks << ["#{best} >= 1.5x the best Puma", rps / pumas.map(&:first).max, 1.5] unless pumas.empty?
    elsif (t5 = results["puma-t5"])
      checks << ["#{best} >= 10x puma-t5", rps / t5[0], 10]
      lowest = pumas.map { |(*, puma_p99, _)| millis(puma_p99) }.min
      checks << ["#{best} p99 below every Puma's (Puma's lowest p99 / ours)", lowest / millis(p99), 1.0 + Float::EPSILON]
    end
    if (async = results["async-http"])
      checks << ["#{best} >= async-http", rps / async[0], 1]
      checks << ["uring_machine (1 process) >= async-http (1 process)", results["uring_machine"][0] / async[0], 1]
    end
    checks.each { |text, ratio, goal| puts format("goal: %-62s %6.2fx  %s", text, ratio, ratio >= goal ? "met" : "MISSED") }
  end

  # wrk's latency text ("12.5ms", "1.02s", "850.00us") in milliseconds.
  def millis(text)
    value = Float(text[/[\d.]+/])
    { "us" => 0.001, "ms" => 1, "s" => 1000 }.fetch(text[/[a-z]+\z/]) * value
  end
end

RackBench.run if $PROGRAM_NAME == __FILE__
