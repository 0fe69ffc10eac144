# frozen_string_literal: true

require_relative "scheduler_helper"
require "timeout"

# A wake-up wakes only the wait it was issued for: a sleep that follows a wait which ended
# another way (timed out, raised into, interrupted) lasts its whole duration, whatever was on
# its way to the wait before. Each test builds the stale wake-up on purpose: the other fibers'
# timers fire while the thread is busy (no completion is reaped meanwhile), so that one reap
# queues a fiber's wake-up and the fiber that then interferes with it, in a known order.
class TestSchedulerStaleWakeups < SchedulerTest
  SLEEP = 0.05
  class Interrupted < StandardError; end

  # A fiber that makes the ring start every timer queued so far, then keeps the thread busy
  # for +seconds+ (other threads may run), then through the block if given: the timers that
  # fire meanwhile are reaped together when it finishes, in the order they fired.
  def hold_the_ring(seconds)
    schedule_fiber do
      sleep 0
      deadline = monotonic + seconds
      Thread.pass while monotonic < deadline
      yield if block_given?
    end
  end

  # A fiber whose 2 ms sleep is over (its timer fired, the fiber is queued, not yet run) when
  # the block, called 1 ms in from another fiber with the scheduler and that fiber, interrupts
  # it with Interrupted; the fiber then sleeps SLEEP. Returns { raised:, slept: }.
  def sleep_interrupted_after_its_timer_fired(&interrupt)
    with_scheduler do |scheduler|
      got = {}
      sleeper = schedule_fiber do
        begin
          sleep 0.002
        rescue Interrupted
          got[:raised] = true
        end
        got[:slept] = elapsed { sleep SLEEP }
      end
      schedule_fiber do
        sleep 0.001
        interrupt.call(scheduler, sleeper)
      end
      hold_the_ring(0.02)
      Fiber.set_scheduler(nil)
      got
    end
  end

  def test_unblock_from_another_thread_after_block_timed_out_does_not_end_the_next_sleep
    go = Thread::Queue.new
    unblocked = Thread::Queue.new
    got = with_scheduler do |scheduler|
      got = {}
      waiter = schedule_fiber do
        got[:block] = scheduler.block(:blocker, 0.001)
        got[:slept] = elapsed { sleep SLEEP }
      end
      # The other thread unblocks the waiter 20 ms after its block timed out in the kernel,
      # before this thread has seen either.
      unblocker = Thread.new do
        go.pop
        scheduler.unblock(:blocker, waiter)
        unblocked << true
      end
      hold_the_ring(0.02) do
        go << true
        Thread.pass while unblocked.empty?
      end
      Fiber.set_scheduler(nil)
      unblocker.join
      got
    end
    assert_equal false, got[:block], "the block timed out before the unblock came"
    assert_operator got[:slept], :>=, SLEEP, "the unblock meant for the block ended the sleep after it"
  end

  def test_unblock_of_a_fiber_whose_block_timed_out_does_not_end_its_next_sleep
    got = with_scheduler do |scheduler|
      got = {}
      waiter = schedule_fiber do
        got[:block] = scheduler.block(:blocker, 0.002)
        got[:slept] = elapsed { sleep SLEEP }
      end
      schedule_fiber do
        sleep 0.001
        # The waiter's block timed out in the same reap: it is queued, not yet run.
        scheduler.unblock(:blocker, waiter)
      end
      hold_the_ring(0.02)
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal false, got[:block]
    assert_operator got[:slept], :>=, SLEEP, "the late unblock ended the next sleep"
  end

  def test_a_sleep_whose_timer_fired_then_raised_into_does_not_end_the_next_sleep
    got = sleep_interrupted_after_its_timer_fired { |_, sleeper| sleeper.raise(Interrupted) }
    assert got[:raised]
    assert_operator got[:slept], :>=, SLEEP, "the first sleep's timer ended the second sleep"
  end

  def test_machine_schedule_with_an_exception_after_the_timer_fired_does_not_end_the_next_sleep
    got = sleep_interrupted_after_its_timer_fired do |scheduler, sleeper|
      scheduler.machine.schedule(sleeper, Interrupted.new("late"))
    end
    assert got[:raised], "the exception is raised in the fiber"
    assert_operator got[:slept], :>=, SLEEP, "the interrupt's wake-up ended the next sleep"
  end

  def test_timeout_around_a_select_whose_io_got_ready_meanwhile_does_not_end_the_next_sleep
    written = Thread::Queue.new
    got = with_pipe do |r, w|
      writer = Thread.new do
        Thread.stop
        w.write("x")
        written << true
      end
      got = with_scheduler do
        got = {}
        schedule_fiber do
          Timeout.timeout(0.001) { IO.select([r]) }
        rescue Timeout::Error
          got[:timed_out] = true
        ensure
          got[:slept] = elapsed { sleep SLEEP }
        end
        hold_the_ring(0.02) do # the timeout fires meanwhile
          Thread.pass until writer.stop?
          writer.wakeup
          # Not join (a wait, which would reap the timeout first): the pipe is readable now,
          # and neither completion is reaped yet.
          Thread.pass while written.empty?
        end
        Fiber.set_scheduler(nil)
        got
      end
      writer.join
      got
    end
    assert got[:timed_out]
    assert_operator got[:slept], :>=, SLEEP, "the poll's completion ended the sleep after the timeout"
  end
end
