# frozen_string_literal: true

require_relative "integration_helper"
require_relative "support/redis_server"
require "stringio"

# Sidekiq 6.4 with `require "uring_machine/sidekiq"` against a redis-server of our own: its
# processors are fibers of one thread under our scheduler, hundreds of them; every job runs
# once, and a stop during a run (Launcher#stop in-process, TERM to the sidekiq command) raises
# Sidekiq::Shutdown in the jobs still running and pushes them back to redis.
class TestIntegrationSidekiq < IntegrationTest
  CONCURRENCY = 200
  LIMIT = 120

  def setup
    super
    require_library("redis", "ruby-redis")
    require_library("uring_machine/sidekiq", "ruby-sidekiq", note: "Sidekiq 6.4")
    require_relative "support/sidekiq_jobs"
    @server = server(RedisServer)
    @redis = Redis.new(**@server.params)
    # Sidekiq 6.4 calls redis-rb 4.8's sadd (pushing, its heartbeat), which warns of its future
    # return value: not ours to say here
    @silenced = Redis.silence_deprecations
    Redis.silence_deprecations = true
    @queue = "um_#{name}"
    @redis.del(*SidekiqJobs::KEYS, "queue:#{@queue}")
    ensure_fd_limit(CONCURRENCY * 2 + 256)
  end

  def teardown
    Redis.silence_deprecations = @silenced if defined?(Redis)
    @redis&.close
    super
  end

  def url
    "redis://127.0.0.1:#{@server.port}/0"
  end

  def pushed(job, args, count)
    Sidekiq::Client.push_bulk("class" => job, "args" => Array.new(count) { args }, "queue" => @queue)
  end

  def queued_jids
    @redis.lrange("queue:#{@queue}", 0, -1).map { |job| JSON.parse(job).fetch("jid") }
  end

  def test_a_thousand_jobs_of_50_ms_io_each_run_once_on_fibers_of_one_thread
    log = StringIO.new
    jids = with_sidekiq(log) do
      jids = pushed(SidekiqJobs::Sleep, [0.05], 1000)
      run_launcher(timeout: 5) { wait_for_count(SidekiqJobs::RUNS, 1000) }
      jids
    end
    runs = @redis.hgetall(SidekiqJobs::RUNS)
    assert_equal jids.sort, runs.keys.sort, "every job ran, none is missing"
    assert_equal ["1"], runs.values.uniq, "no job ran twice"
    assert_equal 0, @redis.llen("queue:#{@queue}")
    assert_equal 1, @redis.hlen(SidekiqJobs::THREADS), "the jobs ran on one thread"
    refute_match(/ERROR|WARN/, log.string)
  end

  # Sidekiq ends a processor whose job failed and starts another in its place, from the
  # processor's own fiber as it ends: the new one outlives it. 20 failures with 5 processors,
  # then 100 jobs that all run.
  def test_a_processor_whose_job_failed_is_replaced
    log = StringIO.new
    quick, processors = with_sidekiq(log) do
      pushed(SidekiqJobs::Failing, [], 20)
      quick = pushed(SidekiqJobs::Sleep, [0.01], 100)
      processors = nil
      run_launcher(timeout: 5, concurrency: 5) do |launcher|
        wait_for_count(SidekiqJobs::RUNS, 100, limit: 30)
        processors = launcher.manager.workers.size
      end
      [quick, processors]
    end
    assert_equal quick.sort, @redis.hgetall(SidekiqJobs::RUNS).keys.sort
    assert_equal 5, processors, "each processor that ended was replaced"
    assert_equal 20, log.string.scan("a job that fails").size, "each failure was logged"
  end

  # Sidekiq::Shutdown is an Interrupt: one that leaves the block of one of Sidekiq's threads
  # (here raised before it even started) ends that fiber only, as it ends only the thread. What
  # is no exception class or object is refused with a TypeError.
  def test_a_shutdown_that_escapes_sidekiqs_block_ends_its_fiber_only
    log = StringIO.new
    value = with_sidekiq(log) do
      in_scheduled_fiber do
        thread = Object.new.extend(Sidekiq::Util).safe_thread("probe") { sleep 60 }
        error = assert_raises(TypeError) { thread.raise("not an exception") }
        assert_match(/exception class/, error.message)
        thread.raise(Sidekiq::Shutdown)
        [thread.class, thread.value]
      end
    rescue Interrupt => e
      flunk "the Shutdown left its fiber for the scheduler thread, as a signal would: #{e.inspect}"
    end
    assert_equal [UringMachine::Sidekiq::FiberThread, nil], value
    assert_match(/probe.*\n.*Sidekiq::Shutdown/, log.string, "logged as Sidekiq logs a thread's failure")
  end

  # 100 quick jobs, then 300 that wait until they are stopped: once all 200 processors are in
  # the latter (on one thread, at once), the quick ones have all ended. The stop's timeout then
  # passes, Sidekiq::Shutdown is raised in the 200, and their jobs are pushed back.
  def test_a_stop_during_a_run_pushes_the_unfinished_jobs_back
    log = StringIO.new
    busy = nil
    quick, stuck = with_sidekiq(log) do
      quick = pushed(SidekiqJobs::Sleep, [0.05], 100)
      stuck = pushed(SidekiqJobs::Stuck, [], 300)
      run_launcher(timeout: 1) do
        wait_for_count(SidekiqJobs::STARTED, CONCURRENCY)
        busy = Sidekiq::Processor::WORKER_STATE.size # what the heartbeat reports, by tid
      end
      [quick, stuck]
    end
    assert_equal CONCURRENCY, busy, "each processor fiber counts as a busy worker of its own"
    assert_pushed_back(quick, stuck)
    assert_includes log.string, "Terminating #{CONCURRENCY} busy worker threads"
    assert_includes log.string, "Pushed #{CONCURRENCY} jobs back to Redis"
  end

  # The same through the sidekiq command, which requires the adapter with the application
  # (-r): TERM, and it exits 0 with the unfinished jobs back in redis.
  def test_term_to_the_sidekiq_command_pushes_the_unfinished_jobs_back
    # the command of the Sidekiq loaded here (lib/sidekiq.rb's gem), found as a gem or not
    command = File.expand_path("../bin/sidekiq", File.dirname($LOAD_PATH.resolve_feature_path("sidekiq").last))
    skip_with_reason("no sidekiq command at #{command}") unless File.file?(command)
    Sidekiq.redis = { url: url, size: 2 }
    quick = pushed(SidekiqJobs::Sleep, [0.05], 100)
    stuck = pushed(SidekiqJobs::Stuck, [], 300)
    Dir.mktmpdir("um-sidekiq-") do |dir|
      log = File.join(dir, "sidekiq.log")
      app = File.expand_path("support/sidekiq_app.rb", __dir__)
      sidekiq = LocalServer::Child.new(
        [RbConfig.ruby, command, "-r", app, "-c", CONCURRENCY.to_s, "-t", "1", "-q", @queue],
        log: log, env: { "REDIS_URL" => url }
      )
      begin
        LocalServer.wait_until("#{CONCURRENCY} jobs started", limit: LIMIT, process: sidekiq, log: log) do
          @redis.hlen(SidekiqJobs::STARTED) >= CONCURRENCY
        end
        Process.kill(:TERM, sidekiq.pid)
        LocalServer.wait_until("sidekiq's exit", limit: LIMIT, log: log) { !sidekiq.alive? }
        assert sidekiq.success?, "sidekiq exited with #{sidekiq.status_text}:\n#{File.read(log)}"
        assert_includes File.read(log), "Pushed #{CONCURRENCY} jobs back to Redis"
      ensure
        sidekiq.stop(:KILL)
      end
    end
    assert_pushed_back(quick, stuck)
  ensure
    Sidekiq.redis_pool.shutdown(&:close)
  end

  private

  # Configures Sidekiq for this test's redis and +log+, runs the block, then flushes the
  # processed-job counts (else Sidekiq does it at exit) and closes the connections it opened.
  def with_sidekiq(log)
    logger = Sidekiq.logger
    Sidekiq.logger = Sidekiq::Logger.new(log)
    Sidekiq.redis = { url: url, size: CONCURRENCY + 10 }
    yield
  ensure
    Sidekiq::Launcher.flush_stats
    Sidekiq.redis_pool.shutdown(&:close)
    Sidekiq.logger = logger
  end

  # Runs a Launcher with +concurrency+ processors in a fiber of a scheduler thread, until the
  # block (given the launcher) returns; then stops it, giving the jobs still running +timeout+
  # seconds.
  def run_launcher(timeout:, concurrency: CONCURRENCY)
    title = $PROGRAM_NAME
    with_scheduler(limit: LIMIT) do
      schedule_fiber do
        options = Sidekiq.options.merge(queues: [@queue], concurrency: concurrency, timeout: timeout)
        launcher = Sidekiq::Launcher.new(options)
        launcher.run
        yield launcher
        launcher.stop
      end
    end
  ensure
    $PROGRAM_NAME = title # the heartbeat shows the busy count in the process title
  end

  # Waits (in a fiber) until the hash +key+ in redis has +count+ fields.
  def wait_for_count(key, count, limit: LIMIT)
    redis = Redis.new(**@server.params)
    deadline = monotonic + limit
    until redis.hlen(key) >= count
      raise "#{key}: not #{count} jobs within #{limit}s" if monotonic > deadline

      sleep 0.02
    end
  ensure
    redis&.close
  end

  # Each quick job ran exactly once; each stuck one is back in the queue exactly once, and those
  # that had started (CONCURRENCY of them, on one thread) got Sidekiq::Shutdown once.
  def assert_pushed_back(quick, stuck)
    runs = @redis.hgetall(SidekiqJobs::RUNS)
    assert_equal quick.sort, runs.keys.sort, "the quick jobs ran, and only they"
    assert_equal ["1"], runs.values.uniq, "no job ran twice"
    assert_equal stuck.sort, queued_jids.sort, "each unfinished job is back in the queue, once"
    started = @redis.hgetall(SidekiqJobs::STARTED)
    assert_equal CONCURRENCY, started.size, "as many jobs at once as processors"
    assert_equal ["1"], started.values.uniq
    assert_equal started, @redis.hgetall(SidekiqJobs::SHUTDOWN), "Sidekiq::Shutdown was raised in each running job"
    assert_equal 1, @redis.hlen(SidekiqJobs::THREADS), "the jobs ran on one thread"
  end
end
