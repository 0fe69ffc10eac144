# frozen_string_literal: true

require_relative "layer_helper"

# supervise: lifecycle events, restart policies and their limit, supervising given fibers or
# all children, and what leaving it early does; with the Machine API and under the scheduler.
module SuperviseCases
  def test_events_for_fibers_that_end_or_fail
    events = run_in_fiber do
      log = []
      ok = UringMachine.spin { pass_control; :fine }
      bad = UringMachine.spin { pass_control; raise ArgumentError, "boom" }
      result = UringMachine.supervise { |event, fiber, error| log << [event, fiber, error&.message] }
      assert_nil result
      assert_equal [[:start, ok, nil], [:start, bad, nil]], log.first(2)
      log.drop(2).sort_by { |e| e[0] }.map { |event, fiber, msg| [event, fiber.equal?(ok) ? :ok : :bad, msg] }
    end
    assert_equal [[:error, :bad, "boom"], [:stop, :ok, nil]], events
  end

  def test_a_two_argument_hook
    events = run_in_fiber do
      log = []
      UringMachine.spin { pass_control }
      UringMachine.supervise { |event, _fiber| log << event }
      log
    end
    assert_equal %i[start stop], events
  end

  def test_restart_on_error_until_it_succeeds
    attempts = 0
    events = run_in_fiber do
      log = []
      UringMachine.spin do
        attempts += 1
        pass_control
        raise "flaky" if attempts < 3

        :ok
      end
      UringMachine.supervise(restart: :on_error) { |event, _fiber| log << event }
      log
    end
    assert_equal 3, attempts
    assert_equal %i[start error restart error restart stop], events
  end

  def test_restart_always_restarts_a_fiber_that_returned
    runs = 0
    error = run_in_fiber do
      UringMachine.spin do
        runs += 1
        pass_control
      end
      UringMachine.supervise(restart: :always, max_restarts: 3, within: 60)
    rescue UringMachine::RestartLimitError => e
      e
    end
    assert_kind_of UringMachine::RestartLimitError, error
    assert_equal 4, runs, "the first run and 3 restarts"
  end

  def test_the_restart_limit_error_has_the_last_failure_as_cause
    error = run_in_fiber do
      UringMachine.spin do
        pass_control
        raise IOError, "always failing"
      end
      UringMachine.supervise(restart: :on_error, max_restarts: 2)
    rescue UringMachine::RestartLimitError => e
      e
    end
    assert_kind_of IOError, error.cause
  end

  def test_supervising_given_fibers_only
    result = run_in_fiber do
      log = []
      watched = UringMachine.spin { pass_control; :a }
      other = UringMachine.spin { sleep_a_while }
      UringMachine.supervise(watched) { |event, fiber| log << [event, fiber.equal?(watched)] }
      alive = other.alive?
      other.stop
      [log, alive]
    end
    assert_equal [[[:start, true], [:stop, true]], true], result
  end

  def test_supervised_fibers_of_another_parent_are_adopted
    result = run_in_fiber do
      inner = nil
      elsewhere = UringMachine.spin do
        inner = UringMachine.spin { 3.times { pass_control } }
        sleep_a_while
      end
      pass_control # elsewhere runs, and spins inner
      supervisor = UringMachine.spin do
        UringMachine.supervise(inner)
        :supervised
      end
      pass_control # the supervisor takes inner over
      adopted = inner.parent.equal?(supervisor)
      value = supervisor.join
      elsewhere.stop
      [adopted, value, elsewhere.children]
    end
    assert_equal [true, :supervised, []], result
  end

  def test_an_unwatched_childs_failure_is_raised_out_of_supervise
    error = run_in_fiber do
      watched = UringMachine.spin { sleep_a_while }
      UringMachine.spin { pass_control; raise "unwatched" }
      begin
        UringMachine.supervise(watched)
      rescue RuntimeError => e
        refute watched.alive?, "leaving supervise stopped what it watched"
        e
      end
    end
    assert_equal "unwatched", error.message
  end

  def test_leaving_early_stops_the_watched_fibers
    log = []
    run_in_fiber do
      UringMachine.spin do
        sleep_a_while
      ensure
        log << :stopped
      end
      UringMachine.move_on_after(0.01) { UringMachine.supervise }
      log << :after
    end
    assert_equal %i[stopped after], log
  end

  def test_bad_arguments
    run_in_fiber do
      assert_raises(ArgumentError) { UringMachine.supervise(restart: :sometimes) }
      assert_raises(ArgumentError) { UringMachine.supervise(max_restarts: -1) }
      assert_raises(ArgumentError) { UringMachine.supervise(within: 0) }
    end
  end
end

class TestSuperviseMachine < Minitest::Test
  include SuperviseCases
  include LayerOnMachine
end

class TestSuperviseScheduler < SchedulerTest
  include SuperviseCases
  include LayerOnScheduler

  def sleep_a_while = sleep(30)

  def test_supervising_fibers_that_fiber_schedule_started
    events = with_scheduler do
      log = []
      Fiber.schedule do
        Fiber.schedule { sleep 0 }
        Fiber.schedule { sleep 0; raise "scheduled failure" }
        UringMachine.supervise { |event, _fiber, error| log << [event, error&.message] }
      end.then { |f| UringMachine.machine_of(f).join(f) }
      log
    end
    assert_equal [[:error, "scheduled failure"], [:start, nil], [:start, nil], [:stop, nil]], events.sort_by(&:to_s)
  end
end
