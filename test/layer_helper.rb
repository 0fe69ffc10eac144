# frozen_string_literal: true

require_relative "scheduler_helper"

# The Ruby layer's tests run each case twice: on the Machine API (LayerOnMachine) and under
# UringMachine::Scheduler (LayerOnScheduler). A case calls run_in_fiber { } for its body, and
# pass_control, wait(seconds) and sleep_a_while for the waits of the API under test.
module LayerOnMachine
  def run_in_fiber(&block)
    machine = UringMachine.machine
    machine.join(machine.spin(&block))
  end

  def pass_control = UringMachine.machine.snooze
  def wait(seconds) = UringMachine.machine.sleep(seconds)
  def sleep_a_while = wait(30)
end

module LayerOnScheduler
  def run_in_fiber(&block)
    with_scheduler { Fiber.schedule(&block).then { |f| UringMachine.machine_of(f).join(f) } }
  end

  def pass_control = sleep(0)
  def wait(seconds) = sleep(seconds)
  def sleep_a_while = sleep(30)
end
