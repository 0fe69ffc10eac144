# frozen_string_literal: true

require_relative "test_helper"

# spin(on_thread:) works with any thread that runs a machine, not only worker threads: the
# thread starts the fiber the next time it waits in its machine (its scheduler's loop, a
# fiber's receive or sleep); the fiber stays a child of the fiber that asked.
class TestSpinOnAnyMachineThread < Minitest::Test
  def test_a_thread_whose_root_fiber_waits_in_receive
    ready = Thread::Queue.new
    thread = Thread.new do
      UringMachine.machine
      ready << Fiber.current
      UringMachine.receive # :done
    end
    root = ready.pop
    me = Fiber.current
    fiber = UringMachine.spin(on_thread: thread, name: "remote") { [Thread.current, Fiber.current.parent] }
    assert_equal [thread, me], fiber.join
    assert_equal "remote", fiber.name
    root << :done
    assert_equal :done, thread.value
  end

  def test_a_thread_in_its_schedulers_loop
    ready = Thread::Queue.new
    thread = Thread.new do
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      ready << Fiber.schedule { UringMachine.receive } # the loop runs while it waits
    end # Fiber.set_scheduler(nil) at the thread's end runs the loop until every fiber finished
    inbox = ready.pop
    remote = UringMachine.spin(on_thread: thread) { UringMachine.receive }
    remote << :first # the scheduler's close waits for it too
    assert_equal :first, remote.join
    inbox << :done
    thread.join
  end

  def test_a_failure_goes_to_the_fiber_that_asked
    ready = Thread::Queue.new
    thread = Thread.new do
      UringMachine.machine
      ready << Fiber.current
      UringMachine.receive
    end
    root = ready.pop
    machine = UringMachine.machine
    error = machine.join(machine.spin do
      UringMachine.spin(on_thread: thread) { raise ArgumentError, "remote failure" }
      machine.sleep(30) # the failure interrupts this
    rescue ArgumentError => e
      e
    end)
    assert_equal "remote failure", error.message
    root << :done
    thread.join
  end

  def test_a_thread_that_ends_before_it_serves_the_request
    go = Thread::Queue.new
    thread = Thread.new do
      UringMachine.machine
      go.pop # blocked outside the machine: it never serves the request
    end
    Thread.pass until thread.status == "sleep"
    machine = UringMachine.machine
    asking = machine.spin do
      UringMachine.spin(on_thread: thread) { :never }
    rescue ArgumentError => e
      e
    end
    machine.snooze # it asks, and waits for the answer
    go << :end
    error = machine.join(asking)
    assert_match(/ended before it started the fiber/, error.message)
  end
end
