# frozen_string_literal: true

require_relative "scheduler_helper"

# Fiber#kill (Ruby 3.3+) of a fiber our scheduler runs: the block is left by a non-local jump,
# which the fiber's bookkeeping sees through an ensure (lib/uring_machine/fiber_body.rb).
class TestFiberKill < SchedulerTest
  def setup
    super
    skip "Fiber#kill needs Ruby 3.3+" unless Fiber.method_defined?(:kill)
  end

  def test_a_killed_spun_fiber_runs_its_ensure_and_join_raises
    got = with_scheduler do |scheduler|
      ensured = false
      fiber = UringMachine.spin do
        sleep 10
      ensure
        ensured = true
      end
      fiber.kill
      error = assert_raises(RuntimeError) { fiber.join }
      [fiber.alive?, ensured, error.message, scheduler.machine.metrics[:fibers]]
    end
    assert_equal [false, true, "fiber terminated by a non-local jump", 0], got
  end

  def test_close_does_not_wait_for_a_killed_scheduled_fiber
    got = with_scheduler do |scheduler|
      fiber = Fiber.schedule { sleep 10 }
      fiber.kill
      scheduler.close
      [fiber.alive?, scheduler.machine.metrics[:fibers]]
    end
    assert_equal [false, 0], got
  end
end
