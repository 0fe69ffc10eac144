# frozen_string_literal: true

# Rack "hello" served by a real Rack server, loaded by wrk (another process, loopback), every
# mode in the same run, one after another:
#   uring_machine       UringMachine::Rack::Server, one process
#   uring_machine-2w    the same with workers: 2
#   puma-t5, puma-t32   Puma (Debian's puma, 5.6) with 5 and 32 threads, one process
# The app is the same config.ru for all, without middleware (RACK_ENV=none for Puma).
#
#   BENCH_RACK_SECONDS=5        wrk's duration per mode (default 5 x BENCH_SCALE, at least 1)
#   BENCH_RACK_CONNECTIONS=200
# Needs wrk; the Puma modes need puma and rack (Debian: wrk, puma, ruby-rack). Each missing
# piece is said and skipped.
require "socket"
require "tmpdir"
require "etc"
require_relative "harness"

module RackBench
  SECONDS = Integer(ENV.fetch("BENCH_RACK_SECONDS", [(5 * Bench::SCALE).round, 1].max))
  CONNECTIONS = Integer(ENV.fetch("BENCH_RACK_CONNECTIONS", "200"))
  LIB = File.expand_path("../lib", __dir__)
  CONFIG_RU = %(run ->(env) { [200, { "content-type" => "text/plain" }, ["Hello, world!"]] }\n)
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

  # Starts +command+ in a process group of its own and returns its pid once +port+ accepts.
  def start(command, port)
    pid = spawn({ "RACK_ENV" => "none" }, *command, out: File::NULL, err: File::NULL, pgroup: true)
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
  def wrk(port)
    out = IO.popen(["wrk", "-t1", "-c#{CONNECTIONS}", "-d#{SECONDS}s", "--latency", "http://127.0.0.1:#{port}/"],
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
    puts "rack: hello app, wrk -t1 -c#{CONNECTIONS} -d#{SECONDS}s on loopback, one run per mode, " \
         "ruby #{RUBY_VERSION}, #{Etc.nprocessors} cores (ratios: to the best Puma mode)"
    Dir.mktmpdir("um-bench-rack") do |dir|
      config = File.join(dir, "config.ru")
      File.write(config, CONFIG_RU)
      results = modes.to_h do |name, command|
        port = free_port
        pid = start(command.call(config, port), port)
        begin
          [name, wrk(port)]
        ensure
          stop(pid)
        end
      end
      report(results)
    end
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
