# frozen_string_literal: true

require_relative "layer_helper"

# The fiber tree through UringMachine.spin: parents, children, join, stop, restart, children
# stopped with their parent and failures raised in it; with the Machine API and under the
# scheduler alike.
module FiberTreeCases
  def test_parent_and_children
    parent, child = run_in_fiber do
      child = nil
      parent = UringMachine.spin do
        child = UringMachine.spin { sleep_a_while }
        pass_control
        assert_equal [child], Fiber.current.children
        child.stop
        child.join
        assert_empty Fiber.current.children
        Fiber.current
      end
      [parent.join, child]
    end
    assert_same parent, child.parent
  end

  def test_join_returns_the_value_and_await_is_join
    assert_equal [1, 2], run_in_fiber { [UringMachine.spin { 1 }.join, UringMachine.spin { 2 }.await] }
  end

  def test_join_reraises_the_failure_and_it_is_not_raised_again_in_the_parent
    error = run_in_fiber do
      fiber = UringMachine.spin do
        pass_control # a fiber that fails before its parent joins it fails in the parent
        raise ArgumentError, "bad"
      end
      begin
        fiber.join
      rescue ArgumentError => e
        pass_control
        e
      end
    end
    assert_equal "bad", error.message
  end

  def test_stop_runs_ensure_and_join_returns_the_value_given
    log = []
    value = run_in_fiber do
      fiber = UringMachine.spin do
        sleep_a_while
        log << :not_reached
      ensure
        log << :ensure
      end
      pass_control
      fiber.stop(:stopped_value)
      fiber.join
    end
    assert_equal :stopped_value, value
    assert_equal [:ensure], log
  end

  def test_raise_interrupts_what_the_fiber_waits_on_and_join_reraises_it
    error = run_in_fiber do
      fiber = UringMachine.spin { sleep_a_while }
      pass_control
      fiber.raise(KeyError, "raised in")
      fiber.join
    rescue KeyError => e
      e
    end
    assert_equal "raised in", error.message
  end

  def test_stop_of_the_current_fiber_ends_it
    assert_equal :early, run_in_fiber {
      UringMachine.spin do
        Fiber.current.stop(:early)
        :late
      end.join
    }
  end

  def test_children_are_stopped_when_their_parent_finishes
    log = []
    run_in_fiber do
      parent = UringMachine.spin do
        2.times do |i|
          UringMachine.spin do
            sleep_a_while
          ensure
            log << i
          end
        end
        pass_control
        :done
      end
      assert_equal :done, parent.join
      assert_equal [0, 1], log.sort, "both children ended before join returned"
    end
  end

  def test_grandchildren_are_stopped_too
    log = []
    run_in_fiber do
      parent = UringMachine.spin do
        UringMachine.spin do
          UringMachine.spin do
            sleep_a_while
          ensure
            log << :grandchild
          end
          sleep_a_while
        ensure
          log << :child
        end
        pass_control
        pass_control
      end
      parent.join
      assert_equal %i[child grandchild], log.sort, "all ended before join returned"
    end
  end

  def test_a_failure_is_raised_in_the_parent_while_it_waits
    message = run_in_fiber do
      UringMachine.spin do
        pass_control
        raise "child failed"
      end
      sleep_a_while
      :not_reached
    rescue RuntimeError => e
      e.message
    end
    assert_equal "child failed", message
  end

  def test_a_failure_in_a_child_stopping_with_its_parent_comes_out_of_the_parents_join
    error = run_in_fiber do
      parent = UringMachine.spin do
        UringMachine.spin do
          sleep_a_while
        ensure
          raise IOError, "cleanup failed"
        end
        pass_control
        :parent
      end
      begin
        parent.join
      rescue IOError => e
        e
      end
    end
    assert_equal "cleanup failed", error.message
  end

  def test_restart_runs_the_same_block_with_the_same_arguments_under_the_same_parent
    runs = []
    run_in_fiber do
      parent = UringMachine.spin do
        first = UringMachine.spin(:arg) do |a|
          runs << a
          sleep_a_while
        end
        pass_control
        second = first.restart
        pass_control
        refute first.alive?
        assert_same Fiber.current, second.parent
        second.stop
        second.join
      end
      parent.join
    end
    assert_equal %i[arg arg], runs
  end

  def test_add_child_fiber_moves_a_fiber_under_another
    run_in_fiber do
      adopter = UringMachine.spin { sleep_a_while }
      other = UringMachine.spin { sleep_a_while }
      pass_control
      adopter.add_child_fiber(other)
      assert_same adopter, other.parent
      assert_equal [other], adopter.children
      assert_raises(ArgumentError) { other.add_child_fiber(adopter) }
      adopter.stop
      adopter.join
      refute other.alive?, "stopped with its new parent"
    end
  end

  def test_join_of_a_plain_fiber_is_an_argument_error
    run_in_fiber do
      assert_raises(ArgumentError) { Fiber.new { 1 }.join }
    end
  end

  def test_spin_needs_a_block
    assert_raises(ArgumentError) { UringMachine.spin }
  end
end

class TestFiberTreeMachine < Minitest::Test
  include FiberTreeCases
  include LayerOnMachine
end

class TestFiberTreeScheduler < SchedulerTest
  include FiberTreeCases
  include LayerOnScheduler

  def test_fiber_schedule_children_run_to_their_end_after_their_parent
    log = []
    with_scheduler do
      Fiber.schedule do
        Fiber.schedule do
          sleep 0.01
          log << :child_finished
        end
        log << :parent_finished
      end
    end
    assert_equal %i[parent_finished child_finished], log
  end

  def test_an_orphans_failure_goes_to_the_nearest_living_ancestor
    message = with_scheduler do |scheduler|
      Fiber.schedule do
        Fiber.schedule do
          sleep 0
          raise "orphan failed"
        end
      end
      scheduler.run # the root fiber, the orphan's nearest living ancestor, waits here
      :not_reached
    rescue RuntimeError => e
      e.message
    end
    assert_equal "orphan failed", message
  end

  def test_parent_of_a_scheduled_fiber_is_the_fiber_that_scheduled_it
    with_scheduler do
      root = Fiber.current
      inner = nil
      outer = Fiber.schedule { inner = Fiber.schedule { sleep 0 } }
      assert_same root, outer.parent
      assert_same outer, inner.parent
    end
  end
end
