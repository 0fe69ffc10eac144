# frozen_string_literal: true

require_relative "layer_helper"

# A deadline's signal cannot be swallowed by the block's `rescue => e`: cancel_after's block is
# left all the same and the promised error comes out of cancel_after (move_on_after: the value).
module KitCancellationCases
  def test_cancel_after_passes_through_the_blocks_rescue
    rescued = []
    error = run_in_fiber do
      UringMachine.cancel_after(0.01) do
        sleep_a_while
      rescue StandardError => e
        rescued << e
      end
    rescue UringMachine::Cancel => e
      e
    end
    assert_empty rescued
    assert_kind_of UringMachine::Cancel, error
  end

  def test_with_error_comes_out_although_the_block_rescues_everything_standard
    custom = Class.new(StandardError)
    instance = custom.new("mine")
    rescued = []
    outcomes = run_in_fiber do
      [custom, instance, "too slow"].map do |with_error|
        UringMachine.cancel_after(0.01, with_error: with_error) do
          sleep_a_while
        rescue StandardError => e
          rescued << e
        end
      rescue StandardError => e
        e
      end
    end
    assert_empty rescued
    assert_instance_of custom, outcomes[0]
    assert_same instance, outcomes[1]
    assert_equal [RuntimeError, "too slow"], [outcomes[2].class, outcomes[2].message]
  end

  def test_the_error_outside_has_no_internal_cause_and_a_backtrace
    error = run_in_fiber do
      UringMachine.cancel_after(0.01) { sleep_a_while }
    rescue UringMachine::Cancel => e
      e
    end
    assert_nil error.cause
    refute_empty error.backtrace
  end

  def test_a_failure_of_the_block_itself_is_raised_as_it_is
    error = run_in_fiber do
      UringMachine.cancel_after(5) { raise ArgumentError, "mine" }
    rescue ArgumentError => e
      e
    end
    assert_equal "mine", error.message
  end
end

class TestKitCancellationMachine < Minitest::Test
  include KitCancellationCases
  include LayerOnMachine
end

class TestKitCancellationScheduler < SchedulerTest
  include KitCancellationCases
  include LayerOnScheduler
end
