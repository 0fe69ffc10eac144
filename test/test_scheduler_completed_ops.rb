# frozen_string_literal: true

require_relative "scheduler_helper"

# Under the scheduler too, an op the kernel completed is never thrown away (see
# test_completed_ops.rb for the Machine API): the hook returns its result and the interrupt
# arrives at the fiber's next wait. An interrupter fiber whose own read completes just before
# the victim's runs in between: no timing is involved.
class TestSchedulerCompletedOps < SchedulerTest
  Stop = Class.new(StandardError)

  # Schedules an interrupter that waits on a trigger pipe and then calls +interrupt+ with the
  # victim, the victim running +op+, and a driver that lets both submit, then writes the
  # trigger and calls +complete+. Call from inside with_scheduler; returns the victim's outcome
  # once the scheduler is done.
  def race(interrupt:, complete:, &op)
    trigger_r, trigger_w = IO.pipe
    victim = nil
    outcome = {}
    schedule_fiber do
      trigger_r.read(1)
      interrupt.call(victim)
    end
    victim = schedule_fiber { outcome[:value] = op.call }
    schedule_fiber do
      sleep 0.001 # the others wait in the ring
      trigger_w << "!"
      complete.call
    end
    Fiber.set_scheduler(nil)
    outcome[:value]
  ensure
    [trigger_r, trigger_w].each { |io| io&.close }
  end

  def stop_with_schedule
    ->(fiber) { UringMachine.machine.schedule(fiber, Stop.new("stop")) }
  end

  def next_wait_raises
    sleep 5
    :no_exception
  rescue Stop
    :raised
  end

  def test_io_read_returns_the_bytes_then_the_exception_comes
    got = with_scheduler do
      r, w = IO.pipe
      got = race(interrupt: stop_with_schedule, complete: -> { w << "data" }) do
        [r.readpartial(100), next_wait_raises]
      end
      [r, w].each(&:close)
      got
    end
    assert_equal ["data", :raised], got
  end

  def test_a_registered_buffer_read_keeps_its_bytes
    got = with_scheduler do |scheduler|
      r, w = IO.pipe
      buffer = IO::Buffer.new(64)
      scheduler.register_buffers([buffer])
      got = race(interrupt: ->(f) { f.raise(Stop, "stop") }, complete: -> { w << "data" }) do
        count = buffer.read(r, 4)
        [count, buffer.get_string(0, count), next_wait_raises]
      end
      scheduler.unregister_buffers
      [r, w].each(&:close)
      got + [scheduler.machine.metrics[:ops][:read_fixed]]
    end
    assert_equal [4, "data", :raised, 1], got
  end

  def test_timeout_timeout_lets_a_completed_read_return
    require "timeout"
    got = with_scheduler do
      r, w = IO.pipe
      got = {}
      schedule_fiber do
        got[:value] = Timeout.timeout(0.02) { r.readpartial(10) }
        sleep 0.001
        got[:later] = :no_late_timeout
      rescue Timeout::Error
        got[:timed_out] = true
      end
      schedule_fiber do
        sleep 0.001 # the read and the timer are in the kernel
        w << "data"
        # Busy for a while, the ring untouched: the timer fires while the read's completion
        # waits to be collected.
        deadline = monotonic + 0.1
        nil while monotonic < deadline
      end
      Fiber.set_scheduler(nil)
      [r, w].each(&:close)
      got
    end
    assert_equal({ value: "data", later: :no_late_timeout }, got)
  end

  def test_an_interrupted_blocking_operation_wait_returns_only_after_the_work_ran
    got = with_scheduler do |scheduler|
      got = {}
      waiter = schedule_fiber do
        scheduler.blocking_operation_wait(lambda {
          sleep 0.05 # a worker thread: no scheduler there
          got[:work_done] = true
        })
      rescue Stop
        got[:done_when_raised] = got[:work_done]
      end
      schedule_fiber { UringMachine.machine.schedule(waiter, Stop.new("stop")) }
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal({ work_done: true, done_when_raised: true }, got)
  end
end
