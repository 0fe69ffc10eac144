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

  # Errors escaping a fiber are raised in its parent (see DESIGN: errors escaping fibers).
  def test_exception_in_a_fiber_that_never_blocked_comes_out_of_fiber_schedule
    error = with_scheduler do
      assert_raises(RuntimeError) { Fiber.schedule { raise "immediate-boom" } }
    end
    assert_equal "immediate-boom", error.message
  end

  def test_exception_in_a_fiber_that_blocked_first_comes_out_of_close
    error = with_scheduler do
      Fiber.schedule do
        sleep 0.01
        raise "blocked-then-boom"
      end
      assert_raises(RuntimeError) { Fiber.set_scheduler(nil) }
    end
    assert_equal "blocked-then-boom", error.message
  end

  def test_exception_in_a_fiber_comes_out_of_run_and_the_scheduler_goes_on
    got = with_scheduler do |scheduler|
      Fiber.schedule do
        sleep 0.01
        raise ArgumentError, "from run"
      end
      finished = false
      Fiber.schedule do
        sleep 0.02
        finished = true
      end
      error = assert_raises(ArgumentError) { scheduler.run }
      scheduler.run
      [error.message, finished]
    end
    assert_equal ["from run", true], got
  end

  def test_exception_in_a_child_interrupts_its_waiting_parent_fiber
    got = with_scheduler do
      result = nil
      Fiber.schedule do
        Fiber.schedule do
          sleep 0.01
          raise IndexError, "child"
        end
        sleep 30
        result = :slept
      rescue IndexError => e
        result = e.message
      end
      Fiber.set_scheduler(nil)
      result
    end
    assert_equal "child", got
  end

  def test_exception_escaping_to_the_root_fiber_ends_the_thread
    thread = Thread.new do
      Thread.current.report_on_exception = false
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule do
        sleep 0.01
        raise "thread ends"
      end
    end
    error = assert_raises(RuntimeError) { thread.join(RUN_LIMIT) }
    assert_equal "thread ends", error.message
  end

  def test_run_returns_once_every_fiber_finished_and_more_can_be_scheduled
    got = with_scheduler do |scheduler|
      order = []
      Fiber.schedule { sleep 0.01; order << 1 }
      scheduler.run
      order << :ran
      Fiber.schedule { sleep 0.01; order << 2 }
      scheduler.run
      order << scheduler.closed?
    end
    assert_equal [1, :ran, 2, false], got
  end

  def test_scheduler_created_on_one_thread_runs_on_the_thread_that_installs_it
    scheduler = UringMachine::Scheduler.new
    thread = Thread.new do
      Fiber.set_scheduler(scheduler)
      Fiber.schedule { sleep 0.01 }
      Fiber.set_scheduler(nil)
      scheduler.machine
    end
    assert thread.join(RUN_LIMIT)
    assert_same thread.value, scheduler.machine
    assert scheduler.closed?
    error = assert_raises(RuntimeError) { scheduler.run }
    assert_match(/another thread/, error.message)
  end

  def test_scheduler_is_closed_at_thread_exit
    scheduler = UringMachine::Scheduler.new
    refute scheduler.closed?
    thread = Thread.new { Fiber.set_scheduler(scheduler) }
    assert thread.join(RUN_LIMIT)
    assert scheduler.closed?
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
end
