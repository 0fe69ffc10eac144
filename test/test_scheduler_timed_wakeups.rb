# frozen_string_literal: true

require_relative "scheduler_helper"

# A fiber in a timed wait (ConditionVariable#wait(mutex, timeout), which CRuby turns into
# kernel_sleep(timeout); Queue#pop(timeout:) and Thread#join(limit), which become
# block(blocker, timeout)) returns as soon as it is signalled, from this thread or another,
# not when the timeout runs out. The bounds are loose on purpose: 1 s against a 5 s timeout.
class TestSchedulerTimedWakeups < SchedulerTest
  TIMEOUT = 5

  def test_condition_variable_wait_with_timeout_is_woken_by_a_fiber
    got = with_scheduler do
      got = {}
      mutex = Mutex.new
      cv = ConditionVariable.new
      schedule_fiber do
        mutex.synchronize { got[:time] = elapsed { cv.wait(mutex, TIMEOUT) } }
      end
      schedule_fiber do
        sleep 0.01
        mutex.synchronize { cv.signal }
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_operator got[:time], :<, 1, "signal woke the waiter"
  end

  def test_condition_variable_wait_with_timeout_is_woken_by_broadcast_from_another_thread
    mutex = Mutex.new
    cv = ConditionVariable.new
    waiting = Thread::Queue.new
    signaller = Thread.new do
      2.times { waiting.pop }
      sleep 0.01
      mutex.synchronize { cv.broadcast }
    end
    got = with_scheduler do
      times = []
      2.times do
        schedule_fiber do
          mutex.synchronize do
            waiting << true
            times << elapsed { cv.wait(mutex, TIMEOUT) }
          end
        end
      end
      Fiber.set_scheduler(nil)
      times
    end
    signaller.join
    assert_equal 2, got.size
    got.each { |t| assert_operator t, :<, 1, "broadcast woke every waiter" }
  end

  def test_queue_pop_with_timeout_is_woken_by_a_push
    skip "Queue#pop(timeout:) needs Ruby 3.2+" unless ruby_at_least?("3.2")

    queue = Thread::Queue.new
    pusher = Thread.new do
      sleep 0.01
      queue << :from_thread
    end
    got = with_scheduler do
      local = Thread::Queue.new
      got = {}
      schedule_fiber { got[:thread] = [queue.pop(timeout: TIMEOUT), elapsed { nil }] }
      schedule_fiber { got[:fiber_time] = elapsed { got[:fiber] = local.pop(timeout: TIMEOUT) } }
      schedule_fiber do
        sleep 0.01
        local << :from_fiber
      end
      Fiber.set_scheduler(nil)
      got
    end
    pusher.join
    assert_equal :from_thread, got[:thread].first
    assert_equal :from_fiber, got[:fiber]
    assert_operator got[:fiber_time], :<, 1
  end

  def test_thread_join_with_a_limit_returns_when_the_thread_ends
    got = with_scheduler do
      got = {}
      worker = Thread.new { sleep 0.01 }
      schedule_fiber { got[:time] = elapsed { got[:joined] = worker.join(TIMEOUT) } }
      Fiber.set_scheduler(nil)
      got
    end
    assert got[:joined]
    assert_operator got[:time], :<, 1
  end

  def test_plain_sleep_still_sleeps
    got = with_scheduler do
      got = {}
      schedule_fiber { got[:time] = elapsed { sleep 0.05 } }
      Fiber.set_scheduler(nil)
      got
    end
    assert_operator got[:time], :>=, 0.045
  end
end
