# frozen_string_literal: true

# HTTP keep-alive "hello" server loaded by wrk (another process, loopback), one server process
# per mode, each answering every request on a connection with the same small response:
#   scheduler     one fiber per connection on UringMachine::Scheduler, c.write(response)
#   scheduler-2   the same, c.write(head, body): one write since write coalescing
#   sched-2-nc    c.write(head, body) with UringMachine.coalesce_writes = false (CRuby's path:
#                 one send per piece, the body waits for the peer's delayed ACK)
#   async(-2)     one Async task per connection (when the async gem loads), both shapes
#   threads(-2)   one Ruby thread per connection, both shapes
#   nginx         one nginx worker returning the same body (when nginx is installed): the ceiling
#
#   BENCH_HTTP_SECONDS=3   wrk's duration per mode (default 3 x BENCH_SCALE, at least 1)
#   BENCH_HTTP_CONNECTIONS=50
#   BENCH_RUNS             runs per mode, round-robin, best kept (default 1 for this workload)
# Needs wrk (Debian: wrk); skipped without it.
require "socket"
require "tmpdir"
require "uring_machine"
require_relative "harness"

module HttpBench
  SECONDS = Integer(ENV.fetch("BENCH_HTTP_SECONDS", [(3 * Bench::SCALE).round, 1].max))
  CONNECTIONS = Integer(ENV.fetch("BENCH_HTTP_CONNECTIONS", "50"))
  RUNS = Integer(ENV.fetch("BENCH_RUNS", "1"))
  BODY = "Hello, world!"
  HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: #{BODY.bytesize}\r\n\r\n".freeze
  RESPONSE = (HEAD + BODY).freeze
  READ_MAX = 16_384

  module_function

  # Answers each request (a head ending in an empty line; wrk sends no bodies) until EOF.
  def serve(client, two_pieces)
    buf = +""
    loop do
      buf << client.readpartial(READ_MAX)
      while (i = buf.index("\r\n\r\n"))
        buf = buf.byteslice(i + 4, buf.bytesize)
        two_pieces ? client.write(HEAD, BODY) : client.write(RESPONSE)
      end
    end
  rescue EOFError, Errno::ECONNRESET, Errno::EPIPE, IOError
    nil
  ensure
    client.close unless client.closed?
  end

  def scheduler_server(server, two_pieces, coalesce: true)
    UringMachine.coalesce_writes = coalesce
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    Fiber.schedule do
      loop do
        client = server.accept
        Fiber.schedule { serve(client, two_pieces) }
      end
    end
  end

  def async_server(server, two_pieces)
    Async do |task|
      loop do
        client = server.accept
        task.async { serve(client, two_pieces) }
      end
    end
  end

  def thread_server(server, two_pieces)
    loop do
      client = server.accept
      Thread.new { serve(client, two_pieces) }
    end
  end

  # name => lambda(server) run in a forked child until it is killed.
  def ruby_modes
    modes = {
      "scheduler" => ->(s) { scheduler_server(s, false) },
      "scheduler-2" => ->(s) { scheduler_server(s, true) },
      "sched-2-nc" => ->(s) { scheduler_server(s, true, coalesce: false) }
    }
    if Bench.async?
      modes["async"] = ->(s) { async_server(s, false) }
      modes["async-2"] = ->(s) { async_server(s, true) }
    else
      puts "async: not installed"
    end
    modes.merge("threads" => ->(s) { thread_server(s, false) },
                "threads-2" => ->(s) { thread_server(s, true) })
  end

  def fork_server(body)
    server = TCPServer.new("127.0.0.1", 0)
    server.listen(1024)
    port = server.addr[1]
    pid = fork do
      $stderr.reopen(File::NULL, "w") unless ENV["BENCH_HTTP_DEBUG"]
      body.call(server)
    end
    server.close
    [pid, port]
  end

  def stop(pid)
    begin
      Process.kill(:KILL, -pid) # nginx runs in a process group of its own: master and worker
    rescue Errno::ESRCH
      Process.kill(:KILL, pid)
    end
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  NGINX_CONF = <<~CONF
    worker_processes 1;
    daemon off;
    pid %<dir>s/nginx.pid;
    error_log %<dir>s/error.log crit;
    events { worker_connections 4096; }
    http {
      access_log off;
      client_body_temp_path %<dir>s/body;
      proxy_temp_path %<dir>s/proxy;
      fastcgi_temp_path %<dir>s/fastcgi;
      uwsgi_temp_path %<dir>s/uwsgi;
      scgi_temp_path %<dir>s/scgi;
      keepalive_requests 100000000;
      keepalive_timeout 60s;
      server {
        listen 127.0.0.1:%<port>d;
        default_type text/plain;
        location / { return 200 "#{BODY}"; }
      }
    }
  CONF

  def nginx_binary
    ENV.fetch("PATH", "").split(":").push("/usr/sbin", "/usr/local/sbin")
       .map { |d| File.join(d, "nginx") }.find { |f| File.executable?(f) }
  end

  # Starts nginx (one worker) on a free loopback port with a private conf and prefix; returns
  # [pid, port] once it accepts connections.
  def start_nginx(dir)
    probe = TCPServer.new("127.0.0.1", 0)
    port = probe.addr[1]
    probe.close
    File.write(File.join(dir, "nginx.conf"), format(NGINX_CONF, dir: dir, port: port))
    pid = spawn(nginx_binary, "-p", dir, "-c", File.join(dir, "nginx.conf"), "-e", File.join(dir, "error.log"),
                out: File::NULL, err: File.join(dir, "stderr.log"), pgroup: true)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    begin
      TCPSocket.new("127.0.0.1", port).close
    rescue SystemCallError
      raise "nginx did not start: #{File.read(File.join(dir, 'stderr.log'))}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.02
      retry
    end
    [pid, port]
  end

  Result = Struct.new(:mode, :rps, :latency, :errors)

  # One wrk run against 127.0.0.1:port: requests per second, mean latency and error counts.
  def wrk(port)
    out = IO.popen(["wrk", "-t1", "-c#{CONNECTIONS}", "-d#{SECONDS}s", "--latency", "http://127.0.0.1:#{port}/"],
                   err: %i[child out], &:read)
    rps = out[/Requests\/sec:\s+([\d.]+)/, 1] or raise "wrk failed:\n#{out}"
    latency = out[/Latency\s+(\S+)/, 1]
    errors = [out[/Socket errors:.*$/], out[/Non-2xx.*$/]].compact.join(", ")
    [Float(rps), latency, errors]
  end

  def run
    unless system("wrk -v > /dev/null 2>&1") || $?.exitstatus == 1 # wrk -v exits 1
      puts "http: wrk not installed (Debian: wrk), skipped"
      return
    end
    puts "http: keep-alive hello, wrk -t1 -c#{CONNECTIONS} -d#{SECONDS}s on loopback, " \
         "#{RUNS == 1 ? 'one run' : "best of #{RUNS}"} per mode, ruby #{RUBY_VERSION}, #{Etc.nprocessors} cores"
    modes = ruby_modes.transform_values { |body| -> { fork_server(body) } }
    nginx_dir = nil
    if nginx_binary
      nginx_dir = Dir.mktmpdir("um-bench-nginx")
      modes["nginx"] = -> { start_nginx(nginx_dir) }
    else
      puts "nginx: not installed"
    end
    best = {}
    RUNS.times do
      modes.each do |name, start|
        pid, port = start.call
        begin
          rps, latency, errors = wrk(port)
        ensure
          stop(pid)
        end
        best[name] = Result.new(name, rps, latency, errors) if best[name].nil? || rps > best[name].rps
      end
    end
    report(best)
  ensure
    FileUtils.rm_rf(nginx_dir) if nginx_dir
  end

  def report(results)
    ceiling = results["nginx"]&.rps
    threads = results["threads"]&.rps
    puts format("%-12s %10s %9s %9s %10s  %s", "mode", "req/s", "/nginx", "/threads", "latency", "errors")
    results.each_value do |r|
      puts format("%-12s %10.0f %9s %9s %10s  %s", r.mode, r.rps,
                  ceiling ? format("%.2f", r.rps / ceiling) : "-",
                  threads ? format("%.2f", r.rps / threads) : "-", r.latency, r.errors)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  require "etc"
  require "fileutils"
  HttpBench.run
end
