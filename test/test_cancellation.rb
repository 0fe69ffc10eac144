# frozen_string_literal: true

require_relative "layer_helper"

# cancel_after and move_on_after, with the Machine API and under the scheduler: the op the
# block waits on is cancelled, the deadlines nest, and nothing fires after the block returned.
module CancellationCases
  def test_cancel_after_raises_cancel_by_default
    error = run_in_fiber do
      UringMachine.cancel_after(0.01) { sleep_a_while }
    rescue UringMachine::Cancel => e
      e
    end
    assert_kind_of UringMachine::Cancel, error
  end

  def test_cancel_after_with_a_class_a_message_or_an_instance
    custom = Class.new(StandardError)
    instance = custom.new("mine")
    results = run_in_fiber do
      [custom, "took too long", instance].map do |with_error|
        UringMachine.cancel_after(0.01, with_error: with_error) { sleep_a_while }
      rescue StandardError => e
        e
      end
    end
    assert_kind_of custom, results[0]
    assert_equal [RuntimeError, "took too long"], [results[1].class, results[1].message]
    assert_same instance, results[2]
  end

  def test_cancel_after_cancels_the_read_the_block_waits_on
    r, w = IO.pipe
    result = run_in_fiber do
      UringMachine.cancel_after(0.01) { read_from(r) }
    rescue UringMachine::Cancel
      w << "later"
      read_from(r) # the cancelled read took nothing
    end
    assert_equal "later", result
  ensure
    r&.close
    w&.close
  end

  def test_the_block_value_when_in_time
    assert_equal [:cancel_value, :move_value], run_in_fiber {
      [UringMachine.cancel_after(5) { :cancel_value }, UringMachine.move_on_after(5) { :move_value }]
    }
  end

  def test_move_on_after_returns_with_value
    assert_equal [nil, :gave_up], run_in_fiber {
      [UringMachine.move_on_after(0.01) { sleep_a_while }, UringMachine.move_on_after(0.01, with_value: :gave_up) { sleep_a_while }]
    }
  end

  def test_move_on_after_passes_through_the_blocks_rescue
    rescued = []
    value = run_in_fiber do
      UringMachine.move_on_after(0.01, with_value: :moved) do
        sleep_a_while
      rescue StandardError => e
        rescued << e
      end
    end
    assert_equal :moved, value
    assert_empty rescued
  end

  def test_nested_the_earlier_deadline_wins
    outcome = run_in_fiber do
      UringMachine.move_on_after(0.02, with_value: :outer) do
        UringMachine.move_on_after(5, with_value: :inner) { sleep_a_while }
      end
    end
    assert_equal :outer, outcome
    inner = run_in_fiber do
      UringMachine.cancel_after(5) do
        UringMachine.move_on_after(0.01, with_value: :inner) { sleep_a_while }
      end
    end
    assert_equal :inner, inner
  end

  def test_no_late_firing_after_the_block_returned
    value = run_in_fiber do
      UringMachine.cancel_after(0.01) { :quick }
      wait(0.05) # longer than the deadline: nothing arrives
      :still_here
    end
    assert_equal :still_here, value
  end

  def test_bad_arguments
    run_in_fiber do
      assert_raises(ArgumentError) { UringMachine.cancel_after(1) }
      assert_raises(ArgumentError) { UringMachine.move_on_after(1) }
      assert_raises(ArgumentError) { UringMachine.cancel_after(-1) { 1 } }
      assert_raises(TypeError) { UringMachine.cancel_after(1, with_error: 42) { 1 } }
      assert_raises(TypeError) { UringMachine.move_on_after("soon") { 1 } }
    end
  end
end

class TestCancellationMachine < Minitest::Test
  include CancellationCases
  include LayerOnMachine

  def read_from(io)
    buffer = +""
    UringMachine.machine.read(io, buffer, 100)
    buffer
  end
end

class TestCancellationScheduler < SchedulerTest
  include CancellationCases
  include LayerOnScheduler

  def read_from(io) = io.readpartial(100)
end
