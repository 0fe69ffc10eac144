# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"

# Machine API: a wake-up wakes only the wait it was issued for. A suspended fiber that was
# scheduled, then raised into before it ran, does not take that value into its next suspension.
class TestStaleWakeups < MachineTest
  include ChildRuby::Assertions

  class Interrupted < StandardError; end

  # Spins a fiber that waits in +first_wait+ until Interrupted is raised into it, then
  # suspends: the fiber's value is what resumed that second suspension.
  def spin_interrupted_then_suspended(&first_wait)
    machine.spin do
      begin
        first_wait.call
      rescue Interrupted
        nil
      end
      machine.suspend
    end
  end

  def test_a_value_scheduled_for_a_suspension_that_ended_otherwise_does_not_resume_the_next
    fiber = spin_interrupted_then_suspended { machine.suspend }
    machine.snooze
    machine.schedule(fiber, :for_the_first_suspension)
    fiber.raise(Interrupted) # before the scheduled value reaches it
    machine.schedule(fiber, :for_the_second)
    assert_equal :for_the_second, machine.join(fiber)
  end

  def test_a_completion_queued_before_a_raise_does_not_resume_the_next_suspension
    r, w = IO.pipe
    fiber = spin_interrupted_then_suspended do
      machine.read(r, +"", 10)
      machine.snooze # the deferred Interrupted comes here
    end
    machine.snooze
    w << "x"
    machine.snooze while machine.metrics[:runqueue].zero? # until the read's completion queued the fiber
    fiber.raise(Interrupted)
    machine.schedule(fiber, :scheduled)
    assert_equal :scheduled, machine.join(fiber)
  ensure
    [r, w].each { |io| io&.close }
  end

  # A value sent before the fiber suspends is for the suspension that follows (the fiber
  # listed itself as a waiter first): kept, not dropped as stale.
  def test_a_value_sent_from_another_thread_before_the_fiber_suspends_resumes_that_suspension
    fiber = machine.spin do
      me = Fiber.current
      Thread.new { machine.schedule(me, :early) }.join # the machine has not seen it yet
      machine.suspend
    end
    assert_equal :early, machine.join(fiber)
  end

  def test_a_value_scheduled_for_a_fiber_that_has_not_started_reaches_its_first_suspension
    fiber = machine.spin { machine.suspend }
    machine.schedule(fiber, :hello) # spin only queued it: this is for its first suspension
    assert_equal :hello, machine.timeout(5) { machine.join(fiber) }
  end

  def test_a_value_a_fiber_schedules_for_itself_resumes_its_next_suspension
    fiber = machine.spin do
      machine.schedule(Fiber.current, :to_itself)
      machine.suspend
    end
    assert_equal :to_itself, machine.join(fiber)
  end

  # A wait begun inside another wait of the same fiber (a trap handler that sleeps while the
  # fiber waits on the ring) sets the outer one aside whole: a value sent to the fiber meanwhile
  # resumes the outer suspension once the handler is done. (Before, the inner wait's end
  # dropped the outer one, and the fiber hung.) In a child Ruby, killed if it hangs.
  def test_a_suspension_that_a_trap_handler_interrupts_with_a_wait_is_still_resumed
    script = <<~'RUBY'
      m = UringMachine::Machine.new
      root = Fiber.current
      tid = Thread.current.native_thread_id
      waits_on_ring = -> { File.read("/proc/self/task/#{tid}/wchan").include?("io_cqring_wait") }
      in_trap = false
      trap("USR2") { in_trap = true; m.sleep(0.05); print "trap done, " }
      Thread.new do
        sleep 0.001 until waits_on_ring.call # the main fiber is in its suspension
        Process.kill("USR2", Process.pid)
        sleep 0.001 until in_trap && waits_on_ring.call # the handler's sleep waits inside it
        m.schedule(root, :woken)
      end
      print m.suspend
    RUBY
    child = run_ruby("-ruring_machine", "-e", script, limit: 20)
    assert_predicate child.status, :success?, child.err
    assert_equal "trap done, woken", child.out
  end
end
