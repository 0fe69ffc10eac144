# frozen_string_literal: true

# DNS lookups against a local dnsmasq (every name under bench.test answers 192.0.2.1), LOOKUPS
# lookups of A records, FIBERS (or threads) at a time:
#   um cold          UringMachine::DNS::Resolver without cache, Machine API fibers
#   um cached        the same resolver with its cache (the names repeat: after the first
#                    round, answers come from memory)
#   um getaddrinfo   Addrinfo.getaddrinfo(name, nil, nil, :STREAM), as TCPSocket.new asks, in
#                    fibers under UringMachine::Scheduler (its address_resolve asks our
#                    resolver, uncached, for A and AAAA: the hook is not told the family)
#   um getaddrinfo A the same with family :INET: A records only (Addrinfo.getaddrinfo tells the
#                    hook the family: UringMachine::AddrinfoLookupFamily)
#   resolv sched     Ruby's Resolv::DNS (no cache) in fibers under UringMachine::Scheduler
#   getaddrinfo thr  the same call in threads (glibc, no cache; A and AAAA too), in a child
#                    process whose /etc/resolv.conf is bind-mounted to point at dnsmasq on port
#                    53 (needs root and port 53 free; skipped otherwise)
#   getaddrinfo thr A  the same with family :INET: glibc asks for A only (half the queries)
# "drops": datagrams the host dropped for a full receive buffer during the (best) run; each
# costs a client its 2 s timeout, which then decides the row (glibc's 100 threads sending A and
# AAAA together can overflow dnsmasq's socket on 2 cores).
# Then the server: UringMachine::DNS::Server answering from a block on a thread of this process,
# flooded by a second process (our resolver, FIBERS at a time, no cache); dnsmasq under the same
# flood for comparison. One op = one lookup / one query answered.
require "uring_machine"
require "rbconfig"
require "tmpdir"
require "etc"
require "resolv"
require_relative "harness"
require_relative "../test/support/dnsmasq_server"

module DnsBench
  LOOKUPS = Bench.scaled(4000)
  FIBERS = 100
  NAMES = 200
  FLOOD_SECONDS = 2.0

  module_function

  def names(count = LOOKUPS)
    Array.new(count) { |i| "n#{i % NAMES}.bench.test" }
  end

  def check(addresses)
    raise "wrong answer: #{addresses.inspect}" unless addresses == ["192.0.2.1"]
  end

  def resolver(address, cache:)
    UringMachine::DNS::Resolver.new(nameservers: [address], search: [], resolv_conf: false, hosts: false,
                                    timeout: 2, attempts: 2, cache: cache ? UringMachine::DNS::Cache.new : false)
  end

  # FIBERS fibers on this thread's machine, taking names from +list+ until none is left.
  def machine_fibers(list)
    m = UringMachine.machine
    queue = list.dup
    m.join(*Array.new(FIBERS) { m.spin { yield(queue.pop) while queue.any? } })
  end

  # FIBERS fibers under a fresh UringMachine::Scheduler (whose address_resolve uses +dns+).
  def scheduler_fibers(list, dns: :ring)
    Thread.new do
      scheduler = UringMachine::Scheduler.new
      scheduler.dns = dns
      Fiber.set_scheduler(scheduler)
      queue = list.dup
      FIBERS.times { Fiber.schedule { yield(queue.pop) while queue.any? } }
    ensure
      Fiber.set_scheduler(nil)
    end.join
  end

  def modes(address, port)
    cold = resolver(address, cache: false)
    cached = resolver(address, cache: true)
    resolv = Resolv::DNS.new(nameserver_port: [["127.0.0.1", port]], search: [], ndots: 1)
    {
      "um cold" => -> { machine_fibers(names) { |n| check(cold.lookup(n).map { |r| r.address.to_s }) } },
      "um cached" => -> { machine_fibers(names) { |n| check(cached.lookup(n).map { |r| r.address.to_s }) } },
      "um getaddrinfo" => lambda {
        scheduler_fibers(names, dns: cold) { |n| check(Addrinfo.getaddrinfo(n, nil, nil, :STREAM).map(&:ip_address)) }
      },
      "um getaddrinfo A" => lambda {
        scheduler_fibers(names, dns: cold) { |n| check(Addrinfo.getaddrinfo(n, nil, :INET, :STREAM).map(&:ip_address)) }
      },
      "resolv sched" => -> { scheduler_fibers(names) { |n| check([resolv.getaddress(n).to_s]) } }
    }
  end

  def run_lookups
    dnsmasq = DnsmasqServer.new("--address=/bench.test/192.0.2.1", "--cache-size=0", local: ["#"])
    dnsmasq.start
    results = {}
    Bench::RUNS.times do
      modes(dnsmasq.address, dnsmasq.port).each do |name, body|
        drops = udp_drops
        r = Bench.measure(name) { body.call }
        r.value = udp_drops - drops
        results[name] = r if results[name].nil? || r.wall < results[name].wall
      end
    end
    { "getaddrinfo thr" => "nil", "getaddrinfo thr A" => ":INET" }.each do |name, family|
      threads = getaddrinfo_threads(name, family)
      results[name] = threads if threads
    end
    report(results, LOOKUPS, "lookups/s")
  ensure
    dnsmasq&.stop
  end

  # Addrinfo.getaddrinfo in FIBERS threads, in a child process that sees a resolv.conf naming
  # 127.0.0.1 (where a dnsmasq listens on port 53). nil (with the reason printed) if it cannot.
  def getaddrinfo_threads(mode, family)
    reason = if !Process.uid.zero? then "needs root (a mount namespace and port 53)"
             elsif !system("command -v unshare >/dev/null") then "needs unshare (util-linux)"
             end
    if reason
      puts "#{mode}: skipped, #{reason}"
      return nil
    end
    Dir.mktmpdir("um-dns-bench-") do |dir|
      conf = File.join(dir, "resolv.conf")
      File.write(conf, "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n")
      log = File.join(dir, "dnsmasq.log")
      dnsmasq = Process.spawn(DnsmasqServer.new.instance_variable_get(:@binary), "--keep-in-foreground", "--no-resolv",
                              "--no-hosts", "--port=53", "--listen-address=127.0.0.1", "--bind-interfaces",
                              "--conf-file=/dev/null", "--pid-file=", "--log-facility=#{log}", "--user=root",
                              "--cache-size=0", "--local=/#/", "--address=/bench.test/192.0.2.1", err: log, out: log)
      begin
        sleep 0.3
        child = <<~RUBY
          require "socket"
          names = Array.new(#{LOOKUPS}) { |i| "n\#{i % #{NAMES}}.bench.test" }
          udp_drops = -> { File.read("/proc/net/snmp").lines.grep(/\\AUdp:/).map(&:split).transpose.to_h["RcvbufErrors"].to_i }
          best = nil
          #{Bench::RUNS}.times do
            queue = Thread::Queue.new
            names.each { |n| queue << n }
            queue.close
            drops = udp_drops.call
            t = Process.clock_gettime(Process::CLOCK_MONOTONIC)
            c = Process.times.then { |x| x.utime + x.stime }
            Array.new(#{FIBERS}) do
              Thread.new do
                while (n = queue.pop)
                  got = Addrinfo.getaddrinfo(n, nil, #{family}, :STREAM).map(&:ip_address)
                  raise "wrong answer \#{got}" unless got == ["192.0.2.1"]
                end
              end
            end.each(&:join)
            wall = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t
            cpu = Process.times.then { |x| x.utime + x.stime } - c
            best = [wall, cpu, udp_drops.call - drops] if best.nil? || wall < best[0]
          end
          print best.join(" ")
        RUBY
        out = IO.popen(["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', conf,
                        RbConfig.ruby, "-e", child], &:read)
        unless $?.success?
          puts "#{mode}: failed (#{$?.inspect}): #{out}"
          return nil
        end
        wall, cpu, drops = out.split.map(&:to_f)
        Bench::Result.new(mode, wall, cpu, drops.to_i)
      ensure
        Process.kill(:TERM, dnsmasq)
        Process.wait(dnsmasq)
      end
    end
  end

  # Queries/s a server answers while a second process floods it for FLOOD_SECONDS, and the
  # server's CPU per query (ours: this process's CPU, where only the server thread works
  # meanwhile; dnsmasq's: utime + stime from /proc/PID/stat). Both servers run throughout and
  # are flooded in turn, RUNS rounds; the best round of each is kept.
  def run_server
    server_thread, port, stop = our_server
    dnsmasq = DnsmasqServer.new("--address=/bench.test/192.0.2.1", "--cache-size=0", local: ["#"])
    dnsmasq.start
    floods = { "um server" => -> { flood(port) { Bench.cpu_seconds } },
               "dnsmasq" => -> { flood(dnsmasq.port) { process_cpu_seconds(dnsmasq.pid) } } }
    results = {}
    Bench::RUNS.times do
      floods.each do |name, body|
        result = body.call
        results[name] = result if results[name].nil? || result[0] > results[name][0]
      end
    end
    puts
    puts "server under a flood from another process (#{FIBERS} fibers, #{FLOOD_SECONDS} s, A queries " \
         "through Resolver#addresses, best of #{Bench::RUNS}):"
    puts format("%-16s %12s %10s %14s", "server", "queries/s", "cpu s", "cpu us/query")
    results.each do |name, (qps, count, cpu)|
      puts format("%-16s %12.0f %10.2f %14.1f", name, qps, cpu, cpu * 1e6 / count)
    end
  ensure
    stop&.close
    server_thread&.join
    dnsmasq&.stop
  end

  def our_server
    ready = Thread::Queue.new
    stop_r, stop_w = IO.pipe
    thread = Thread.new do
      m = UringMachine.machine
      server = UringMachine::DNS::Server.new { |t| t.respond("192.0.2.1", ttl: 0) }.listen(host: "127.0.0.1", port: 0)
      ready << server.port
      m.spin do
        m.read(stop_r, +"", 1)
        server.stop
      end
      server.wait
      server.stats[:queries]
    end
    [thread, ready.pop, stop_w]
  end

  # utime + stime of process +pid+, in seconds.
  def process_cpu_seconds(pid)
    fields = File.read("/proc/#{pid}/stat").split(") ").last.split
    (fields[11].to_i + fields[12].to_i).to_f / Etc.sysconf(Etc::SC_CLK_TCK)
  end

  # The flood runs in a child process (Resolver#addresses: the reply read in Rust, so the
  # client costs little per query); returns [queries/s, queries, the server's CPU seconds
  # meanwhile, as the block measures them].
  def flood(port)
    lib = File.expand_path("../lib", __dir__)
    child = <<~RUBY
      require "uring_machine"
      r = UringMachine::DNS::Resolver.new(nameservers: ["127.0.0.1:#{port}"], search: [], resolv_conf: false,
                                          hosts: false, cache: false, timeout: 1, attempts: 3)
      m = UringMachine.machine
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + #{FLOOD_SECONDS}
      count = 0
      start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      m.join(*Array.new(#{FIBERS}) do |f|
        m.spin do
          i = 0
          while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
            got = r.addresses("f\#{f}-\#{i += 1}.bench.test", families: [:A])
            raise "wrong answer: \#{got.inspect}" unless got == ["192.0.2.1"]

            count += 1
          end
        end
      end)
      print count, " ", Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
    RUBY
    cpu = yield
    count, wall = IO.popen([RbConfig.ruby, "-I", lib, "-e", child], &:read).split.map(&:to_f)
    [count / wall, count, yield - cpu]
  end

  # Datagrams this host dropped for a full socket receive buffer (/proc/net/snmp's Udp
  # RcvbufErrors): a query dnsmasq dropped costs its client a whole timeout (2 s), which then
  # decides the row.
  def udp_drops
    File.read("/proc/net/snmp").lines.grep(/\AUdp:/).map(&:split).transpose.to_h["RcvbufErrors"].to_i
  end

  def report(results, ops, unit)
    puts format("%-17s %9s %9s %12s %9s %11s %6s", "mode", "wall s", "cpu s", unit, "us/op", "cpu us/op", "drops")
    results.each_value do |r|
      puts format("%-17s %9.3f %9.3f %12.0f %9.1f %11.1f %6d", r.mode, r.wall, r.cpu, ops / r.wall, r.wall * 1e6 / ops,
                  r.cpu * 1e6 / ops, r.value)
    end
  end

  def run
    DnsmasqServer.new # raises LocalServer::Unavailable without the binary
  rescue LocalServer::Unavailable => e
    puts "dns: skipped, #{e.message}"
  else
    puts "dns: #{LOOKUPS} A lookups of #{NAMES} names, #{FIBERS} at a time, against dnsmasq on loopback, " \
         "best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    run_lookups
    run_server
  end
end

DnsBench.run if $PROGRAM_NAME == __FILE__
