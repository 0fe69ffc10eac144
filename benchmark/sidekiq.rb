# frozen_string_literal: true

# Sidekiq 6.4 working off JOBS jobs that each wait 10 ms on I/O (a sleep) and count themselves
# in redis, every mode in its own process against the same redis-server (started for the run),
# one after another:
#   fibers-c200     `require "uring_machine/sidekiq"`: 200 processors, fibers of one thread
#   threads-c10     stock Sidekiq: 10 processor threads (its default)
#   threads-c50     stock Sidekiq: 50 processor threads
#   fibers-c50      fibers again, as many as threads-c50 (what the fibers themselves cost)
# Per mode: jobs/s from the launcher's start to the last job's count, CPU time per job (the
# process's user + system, start to end), and the process's peak RSS (VmHWM: Ruby, Sidekiq,
# the redis pool, the processors and the jobs). Every processor waits in a BRPOP of its own, so
# the pool holds a redis connection per processor (concurrency + 5, as the sidekiq command sizes it).
#
#   BENCH_SIDEKIQ_JOBS=10000   (default 10,000 x BENCH_SCALE)
#   BENCH_SIDEKIQ_MODES="fibers-c200 threads-c10"   some of the modes (fibers-N / threads-N)
# Needs ruby-sidekiq (6.4) and redis-server; each missing piece is said and skipped.
require "json"
require "rbconfig"
require "etc"
require_relative "harness"

module SidekiqBench
  JOBS = Integer(ENV.fetch("BENCH_SIDEKIQ_JOBS", Bench.scaled(10_000)))
  SECONDS = 0.01
  QUEUE = "bench"
  DONE = "bench:done"
  LIB = File.expand_path("../lib", __dir__)
  MODES = ENV.fetch("BENCH_SIDEKIQ_MODES", "fibers-c200 threads-c10 threads-c50 fibers-c50").split.to_h do |name|
    [name, [name.start_with?("fibers"), Integer(name[/\d+\z/])]]
  end.freeze

  # One mode's process: ARGV fibers (true/false), concurrency, redis URL, job count. Prints
  # {seconds, cpu, rss_kb} as JSON.
  WORKER = <<~'RUBY'
    fibers, concurrency, url, jobs = ARGV[0] == "true", Integer(ARGV[1]), ARGV[2], Integer(ARGV[3])
    $VERBOSE = nil # Sidekiq 6.4 reads $TESTING unset; redis-rb 4.8 warns of sadd's future
    if fibers
      require "uring_machine/sidekiq"
    else
      require "sidekiq"
      require "sidekiq/launcher"
    end
    require "json"

    class BenchJob
      include Sidekiq::Worker

      def perform(seconds)
        sleep seconds
        Sidekiq.redis { |redis| redis.incr("bench:done") }
      end
    end

    Sidekiq.logger.level = Logger::WARN
    Sidekiq.redis = { url: url, size: concurrency + 5 }
    work = lambda do
      launcher = Sidekiq::Launcher.new(Sidekiq.options.merge(queues: ["bench"], concurrency: concurrency))
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      launcher.run
      Sidekiq.redis { |redis| sleep 0.005 until redis.get("bench:done").to_i >= jobs }
      seconds = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      launcher.stop
      seconds
    end
    seconds = fibers ? UringMachine.run(&work) : work.call
    rss = File.read("/proc/self/status")[/^VmHWM:\s+(\d+)/, 1].to_i
    puts JSON.generate(seconds: seconds, cpu: Process.times.then { |t| t.utime + t.stime }, rss_kb: rss)
  RUBY

  module_function

  def run
    require_sidekiq or return
    require_relative "../test/support/redis_server"
    Redis.silence_deprecations = true # Sidekiq 6.4's pushes call redis-rb 4.8's sadd, which warns
    server = RedisServer.new.tap(&:start)
    url = "redis://127.0.0.1:#{server.port}/0"
    puts "sidekiq: #{JOBS} jobs of #{(SECONDS * 1000).round} ms I/O each, one run per mode, " \
         "ruby #{RUBY_VERSION}, sidekiq #{Sidekiq::VERSION}, #{Etc.nprocessors} cores (ratios: to threads-c10)"
    report(MODES.to_h { |name, (fibers, concurrency)| [name, mode(url, fibers, concurrency)] })
  rescue LocalServer::Unavailable => e
    puts "sidekiq: skipped (#{e.message})"
  ensure
    server&.stop
  end

  def require_sidekiq
    verbose = $VERBOSE
    $VERBOSE = nil # Sidekiq 6.4 reads $TESTING unset
    require "sidekiq"
    return true if Sidekiq::VERSION.start_with?("6.4.")

    puts "sidekiq: skipped (Sidekiq #{Sidekiq::VERSION}, not 6.4)"
    false
  rescue LoadError => e
    puts "sidekiq: skipped (#{e.message}; Debian: ruby-sidekiq)"
    false
  ensure
    $VERBOSE = verbose
  end

  # Fills the queue, then runs the mode's process until every job counted itself.
  def mode(url, fibers, concurrency)
    Sidekiq.redis = { url: url, size: 1 }
    Sidekiq.redis { |redis| redis.del(DONE, "queue:#{QUEUE}") }
    JOBS.times.each_slice(1000) do |slice|
      Sidekiq::Client.push_bulk("class" => "BenchJob", "args" => slice.map { [SECONDS] }, "queue" => QUEUE)
    end
    out = IO.popen([RbConfig.ruby, "-I", LIB, "-e", WORKER, fibers.to_s, concurrency.to_s, url, JOBS.to_s], &:read)
    raise "the #{fibers ? 'fibers' : 'threads'} process failed: #{$?.inspect}" unless $?.success?

    JSON.parse(out.lines.last, symbolize_names: true)
  ensure
    Sidekiq.redis_pool.shutdown(&:close)
  end

  def report(results)
    base = results["threads-c10"]
    rss = results["threads-c50"]&.fetch(:rss_kb)
    puts format("%-14s %10s %8s %12s %11s %8s", "mode", "jobs/s", "/t10", "cpu us/job", "peak RSS", "/t50")
    results.each do |name, r|
      puts format("%-14s %10.0f %8s %12.0f %8.1f MB %8s", name, JOBS / r[:seconds],
                  base ? format("%.2f", base[:seconds] / r[:seconds]) : "-", r[:cpu] * 1e6 / JOBS,
                  r[:rss_kb] / 1024.0, rss ? format("%.2f", r[:rss_kb].fdiv(rss)) : "-")
    end
  end
end

SidekiqBench.run if $PROGRAM_NAME == __FILE__
