# frozen_string_literal: true

require_relative "layer_helper"

# A message sent to a fiber that has finished raises FiberError in the sender: nobody would
# ever receive it, and dropping it silently hides the bug.
module SendToFinishedFiberCases
  def test_sending_to_a_finished_fiber_raises
    error = run_in_fiber do
      fiber = UringMachine.spin { :done }
      fiber.join
      assert_raises(FiberError) { fiber << :late }
    end
    assert_equal "the fiber has finished: nobody will receive the message", error.message
  end

  def test_a_fiber_not_started_yet_takes_messages
    assert_equal :early, run_in_fiber { (UringMachine.spin { UringMachine.receive } << :early).join }
  end

  def test_sending_to_a_finished_thread_main_fiber_raises
    main = Thread.new { Fiber.current }.value
    assert_raises(FiberError) { main << :late }
  end
end

class TestSendToFinishedFiberMachine < Minitest::Test
  include SendToFinishedFiberCases
  include LayerOnMachine
end

class TestSendToFinishedFiberScheduler < SchedulerTest
  include SendToFinishedFiberCases
  include LayerOnScheduler
end
