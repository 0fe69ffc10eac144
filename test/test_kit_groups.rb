# frozen_string_literal: true

require_relative "layer_helper"

# Groups (UringMachine::Group, UringMachine.group), Fiber.await / Fiber.select, and a failure
# raised once in a fiber even when it joins its children one by one.
module KitGroupCases
  def test_values_in_spawn_order_whatever_order_they_finish_in
    values = run_in_fiber do
      group = UringMachine::Group.new
      3.times { |i| group.spin { UringMachine.receive && i * 10 } }
      group.fibers.reverse_each { |fiber| fiber << :go }
      group.join
    end
    assert_equal [0, 10, 20], values
  end

  def test_the_first_failure_stops_the_others_and_join_raises_it
    stopped = []
    error = run_in_fiber do
      group = UringMachine::Group.new
      group.spin do
        sleep_a_while
      ensure
        stopped << :sleeper
      end
      failing = group.spin { UringMachine.receive && raise(ArgumentError, "job failed") }
      failing << :go # it fails while join waits
      group.join
    rescue ArgumentError => e
      [e.message, group.fibers.map(&:alive?)]
    end
    assert_equal ["job failed", [false, false]], error
    assert_equal [:sleeper], stopped
  end

  def test_a_failure_while_nobody_joins_goes_to_the_parent_once
    outcome = run_in_fiber do
      group = UringMachine::Group.new
      group.spin { sleep_a_while }
      group.spin { pass_control; raise ArgumentError, "early" }
      begin
        wait(30) # the failure arrives here, as any child's
        :not_raised
      rescue ArgumentError => e
        [e.message, group.join, group.failures.map { |_, error| error.message }]
      end
    end
    assert_equal ["early", [nil, nil], ["early"]], outcome
  end

  def test_collect_keeps_every_value_and_error_and_stops_nothing
    outcome = run_in_fiber do
      group = UringMachine::Group.new(errors: :collect)
      4.times { |i| group.spin { pass_control; i.odd? ? raise(ArgumentError, "job #{i}") : i } }
      wait(0.01) # no failure is raised here
      group.join.map { |v| v.is_a?(Exception) ? v.message : v }
    end
    assert_equal [0, "job 1", 2, "job 3"], outcome
  end

  def test_the_block_form_joins_and_stops_the_members_when_the_block_fails
    stopped = []
    outcome = run_in_fiber do
      values = UringMachine.group { |g| 3.times { |i| g.spin { pass_control; i } } }
      begin
        UringMachine.group do |g|
          g.spin do
            sleep_a_while
          ensure
            stopped << :member
          end
          raise IndexError, "block failed"
        end
      rescue IndexError => e
        [values, e.message]
      end
    end
    assert_equal [[0, 1, 2], "block failed"], outcome
    assert_equal [:member], stopped
  end

  def test_fiber_await_and_select
    outcome = run_in_fiber do
      slow = UringMachine.spin { UringMachine.receive }
      quick = UringMachine.spin { :quick }
      first = Fiber.select(slow, quick)
      slow << :slow
      [first, Fiber.await(slow, quick)]
    end
    assert_equal :quick, outcome[0][1]
    assert_equal %i[slow quick], outcome[1]
  end

  def test_fiber_await_stops_the_others_on_a_failure
    stopped = []
    error = run_in_fiber do
      sleeper = UringMachine.spin do
        sleep_a_while
      ensure
        stopped << :sleeper
      end
      failing = UringMachine.spin { UringMachine.receive && raise(ArgumentError, "await") }
      failing << :go
      Fiber.await(sleeper, failing)
    rescue ArgumentError => e
      e.message
    end
    assert_equal "await", error
    assert_equal [:sleeper], stopped
  end

  # A job runner joining one by one: job 2's failure comes out of the join of job 0 (errors go
  # to parents), and job 2's own join does not raise it a second time.
  def test_joining_one_by_one_raises_a_failure_once
    outcome = run_in_fiber do
      jobs = [UringMachine.spin { UringMachine.receive }, UringMachine.spin { :one }, UringMachine.spin { pass_control; raise ArgumentError, "job 2" }]
      first = begin
        jobs[0].join
      rescue ArgumentError => e
        e.message
      end
      jobs[0] << :zero
      [first, *jobs.map(&:join)]
    end
    assert_equal ["job 2", :zero, :one, nil], outcome
  end

  def test_another_fiber_joining_a_failed_fiber_still_gets_the_failure
    outcome = run_in_fiber do
      failed = UringMachine.spin { pass_control; raise ArgumentError, "mine" }
      begin
        wait(30)
      rescue ArgumentError
        nil
      end
      UringMachine.spin do
        failed.join
      rescue ArgumentError => e
        e.message
      end.join
    end
    assert_equal "mine", outcome
  end

  def test_a_member_that_fails_before_it_first_waits
    outcome = run_in_fiber do
      group = UringMachine::Group.new(errors: :collect)
      group.spin { raise ArgumentError, "at once" }
      group.join.map(&:message)
    end
    assert_equal ["at once"], outcome
  end

  def test_bad_input
    run_in_fiber do
      assert_raises(ArgumentError) { UringMachine::Group.new(errors: :ignore) }
      group = UringMachine::Group.new
      assert_raises(ArgumentError) { group.spin }
      assert_raises(TypeError) { group.add(42) }
      assert_raises(ArgumentError) { group.add(Fiber.new { 1 }) }
      assert_raises(ArgumentError) { group.first }
    end
  end
end

class TestKitGroupsMachine < Minitest::Test
  include KitGroupCases
  include LayerOnMachine
end

class TestKitGroupsScheduler < SchedulerTest
  include KitGroupCases
  include LayerOnScheduler
end
