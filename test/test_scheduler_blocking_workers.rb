# frozen_string_literal: true

require_relative "scheduler_helper"

# The worker threads behind address_resolve (with dns = :getaddrinfo) and blocking_operation_wait: a burst runs at once
# (one thread per job, up to the maximum), idle threads go away.
class TestSchedulerBlockingWorkers < SchedulerTest
  SLOW = 0.2

  # Polls (bounded) until the block is true; returns its last value.
  def eventually(limit = 5)
    deadline = monotonic + limit
    until (value = yield)
      break if monotonic > deadline

      Thread.pass
      sleep 0.005
    end
    value
  end

  def test_a_burst_of_blocking_operations_runs_at_once
    got = with_scheduler do |scheduler|
      results = []
      ticks = 0
      took = elapsed do
        20.times { |i| schedule_fiber { results << scheduler.blocking_operation_wait(proc { sleep SLOW; i }) } }
        schedule_fiber do
          until results.size == 20
            sleep 0.01
            ticks += 1
          end
        end
        scheduler.run
      end
      { results: results, took: took, ticks: ticks, threads: scheduler.blocking_workers.size }
    end
    assert_equal (0...20).to_a, got[:results].sort
    assert_operator got[:took], :<, 2, "20 jobs of #{SLOW}s took #{got[:took].round(2)}s: they ran one after another"
    assert_operator got[:ticks], :>=, 3, "the event loop kept running"
    assert_operator got[:threads], :<=, 20
  end

  def test_address_resolve_bursts_share_the_pool
    got = with_scheduler do |scheduler|
      scheduler.dns = :getaddrinfo # names go through the ring otherwise (test_dns_address_resolve.rb)
      addresses = []
      20.times { schedule_fiber { addresses << scheduler.address_resolve("localhost") } }
      scheduler.run
      { addresses: addresses, threads: scheduler.blocking_workers.size }
    end
    assert_equal 20, got[:addresses].size
    got[:addresses].each { |list| assert_includes list, "127.0.0.1" }
    assert_operator got[:threads], :<=, 20
  end

  def test_the_pool_stops_at_its_maximum_and_queues_the_rest
    got = with_scheduler do |scheduler|
      workers = scheduler.blocking_workers
      workers.maximum = 3
      running = 0
      most = 0
      lock = Thread::Mutex.new
      work = proc do
        lock.synchronize { most = [most, running += 1].max }
        sleep 0.02
        lock.synchronize { running -= 1 }
      end
      10.times { schedule_fiber { scheduler.blocking_operation_wait(work) } }
      scheduler.run
      { most: most, threads: workers.size }
    end
    assert_equal 3, got[:most]
    assert_equal 3, got[:threads]
  end

  def test_idle_threads_exit_after_the_idle_timeout
    got = with_scheduler do |scheduler|
      workers = scheduler.blocking_workers
      workers.idle_timeout = 0.05
      release = Thread::Queue.new
      started = Thread::Queue.new
      got = {}
      3.times { schedule_fiber { scheduler.blocking_operation_wait(proc { started << 1; release.pop }) } }
      schedule_fiber do
        3.times { started.pop }
        got[:busy] = workers.size
        3.times { release << 1 }
      end
      scheduler.run
      got[:gone] = eventually { workers.size.zero? }
      got[:after] = workers.size
      # and the pool grows again when work comes
      schedule_fiber { got[:again] = scheduler.blocking_operation_wait(proc { :again }) }
      scheduler.run
      got
    end
    assert_equal 3, got[:busy]
    assert got[:gone], "idle threads still there after 5s (idle_timeout 0.05s)"
    assert_equal 0, got[:after]
    assert_equal :again, got[:again]
  end

  def test_errors_reach_the_caller_and_close_stops_the_threads
    got = with_scheduler do |scheduler|
      got = {}
      schedule_fiber do
        scheduler.blocking_operation_wait(proc { raise IOError, "from the worker" })
      rescue IOError => e
        got[:error] = e.message
      end
      scheduler.run
      threads = scheduler.blocking_workers.instance_variable_get(:@threads).dup
      scheduler.close
      got[:alive] = threads.count(&:alive?)
      got
    end
    assert_equal "from the worker", got[:error]
    assert_equal 0, got[:alive]
  end

  # ConditionVariable#wait raises RangeError for these: the idle worker died, and with no
  # thread left to start (maximum 1) the next job waited forever.
  def test_an_idle_timeout_too_long_to_wait_keeps_idle_threads
    [Float::INFINITY, 1e20, 2**70].each do |forever|
      workers = UringMachine::BlockingWorkers.new(maximum: 1, idle_timeout: forever)
      assert_equal 1, workers.run(-> { 1 })
      thread = workers.instance_variable_get(:@threads).first
      Thread.pass until workers.idle == 1 || !thread.alive?
      assert thread.alive?, "the idle worker died (idle_timeout #{forever})"
      assert_equal 2, workers.run(-> { 2 })
      workers.shutdown
    end
  end

  def test_settings_are_checked
    workers = UringMachine::BlockingWorkers.new(maximum: 2, idle_timeout: 1)
    assert_equal 2, workers.maximum
    assert_raises(ArgumentError) { workers.maximum = 0 }
    assert_raises(ArgumentError) { workers.idle_timeout = -1 }
    assert_equal 3, workers.run(-> { 3 })
    workers.shutdown
    assert_raises(ClosedQueueError) { workers.run(-> { 4 }) }
  end
end
