# frozen_string_literal: true

require_relative "scheduler_helper"

class TestSchedulerLifecycle < SchedulerTest
  def test_fiber_runs_immediately_until_it_first_blocks
    order = with_scheduler do
      order = []
      fiber = Fiber.schedule do
        order << :fiber_start
        sleep 0.01
        order << :fiber_end
      end
      order << :after_schedule
      assert_kind_of Fiber, fiber
      refute fiber.blocking?, "scheduled fibers are non-blocking"
      order
    end
    assert_equal %i[fiber_start after_schedule fiber_end], order
  end

  def test_fiber_that_never_blocks_finishes_inside_fiber_schedule
    with_scheduler do
      ran = false
      fiber = Fiber.schedule { ran = true }
      assert ran
      refute fiber.alive?
    end
  end

  def test_set_scheduler_nil_waits_for_every_fiber
    done, after = with_scheduler do
      done = []
      20.times { |i| schedule_fiber { sleep 0.001 * (20 - i) ; done << i } }
      Fiber.set_scheduler(nil)
      [done, done.dup]
    end
    assert_equal (0...20).to_a, done.sort
    assert_equal 20, after.size, "set_scheduler(nil) returned before all fibers finished"
  end

  def test_set_scheduler_nil_waits_for_fibers_blocked_on_io
    got = with_scheduler do
      r, w = IO.pipe
      got = nil
      schedule_fiber { got = r.read(3) }
      schedule_fiber do
        sleep 0.02
        w.write("abc")
      end
      Fiber.set_scheduler(nil)
      r.close
      w.close
      got
    end
    assert_equal "abc", got
  end

  def test_close_twice_is_safe
    flag = with_scheduler do |scheduler|
      flag = false
      schedule_fiber do
        sleep 0.01
        flag = true
      end
      scheduler.close
      assert flag, "close ran the pending fiber"
      scheduler.close
      flag
    end
    assert flag
  end

  def test_close_then_set_scheduler_nil_is_safe
    with_scheduler do |scheduler|
      schedule_fiber { sleep 0.001 }
      scheduler.close
      Fiber.set_scheduler(nil)
      scheduler.close
      assert_nil Fiber.scheduler
    end
  end

  def test_exception_in_a_fiber_that_blocked_first_surfaces
    assert_fiber_error_surfaces("blocked-then-boom") do
      Fiber.schedule do
        sleep 0.01
        raise "blocked-then-boom"
      end
    end
  end

  def test_exception_in_a_fiber_that_never_blocked_surfaces
    assert_fiber_error_surfaces("immediate-boom") do
      Fiber.schedule { raise "immediate-boom" }
    end
  end

  def test_scheduler_runs_at_thread_exit
    flag = false
    thread = Thread.new do
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule do
        sleep 0.05
        flag = true
      end
    end
    assert thread.join(10), "thread with a pending scheduled fiber did not exit"
    assert flag, "the scheduler was not run at thread exit"
  end

  def test_fiber_scheduler_is_the_scheduler_and_fibers_see_it
    seen = with_scheduler do |scheduler|
      assert_same scheduler, Fiber.scheduler
      inner = nil
      schedule_fiber { inner = Fiber.current_scheduler }
      Fiber.set_scheduler(nil)
      [scheduler, inner]
    end
    assert_same seen[0], seen[1]
  end

  def test_machine_defaults_to_the_threads_machine
    thread = Thread.new do
      scheduler = UringMachine::Scheduler.new
      [scheduler.machine, UringMachine.machine].tap { scheduler.close }
    end
    assert thread.join(10)
    machine, thread_machine = thread.value
    assert_kind_of UringMachine::Machine, machine
    assert_same thread_machine, machine
  end

  def test_machine_can_be_given
    thread = Thread.new do
      machine = UringMachine::Machine.new
      scheduler = UringMachine::Scheduler.new(machine)
      [machine, scheduler.machine].tap { scheduler.close }
    end
    assert thread.join(10)
    given, used = thread.value
    assert_same given, used
  end

  def test_metrics_count_fiber_switches
    metrics = with_scheduler do |scheduler|
      before = scheduler.machine.metrics[:switches]
      with_pipe do |r, w|
        schedule_fiber { r.read(1) }
        schedule_fiber do
          sleep 0.001
          w.write("x")
        end
        Fiber.set_scheduler(nil)
      end
      [before, scheduler.machine.metrics]
    end
    before, after = metrics
    assert_kind_of Hash, after[:ops]
    assert_kind_of Hash, after[:direct]
    assert_operator after[:switches], :>, before, "a fiber waited, so some switch happened"
  end

  private

  # Runs +schedule+ (which schedules a failing fiber) under a scheduler and asserts that the
  # failure was reported on stderr (fd 2 or $stderr) or raised (by Fiber.schedule or close).
  def assert_fiber_error_surfaces(message, &schedule)
    raised = []
    _out, err = capture_subprocess_io do
      thread = Thread.new do
        Fiber.set_scheduler(UringMachine::Scheduler.new)
        attempt(raised, &schedule)
        # A close that re-raised may leave the scheduler set: closing again must end it.
        2.times { attempt(raised) { Fiber.set_scheduler(nil) } if Fiber.scheduler }
        Fiber.scheduler
      end
      assert thread.join(RUN_LIMIT), "scheduler thread hung after a fiber failed"
      assert_nil thread.value, "the scheduler could not be unset"
    end
    surfaced = raised.any? { |e| e.message == message } || err.include?(message)
    assert surfaced, "the fiber's exception was lost (stderr: #{err.inspect}, raised: #{raised.inspect})"
  end

  def attempt(raised)
    yield
  rescue RuntimeError => e
    raised << e
  end
end
