# frozen_string_literal: true

require_relative "layer_helper"

# every, throttled_loop, after and spin_loop. Times are only checked from below (a tick is
# never early); which ticks ran is checked through the tick numbers they are given.
module KitTimerCases
  INTERVAL = 0.02

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def test_every_ticks_at_start_plus_n_intervals_and_skips_the_ones_missed
    start = now
    ticks = run_in_fiber do
      seen = []
      UringMachine.every(INTERVAL) do |n|
        seen << [n, now]
        wait(2.5 * INTERVAL) if n == 1 # ticks 2 and 3 pass meanwhile
        break seen if seen.size == 4
      end
    end
    numbers = ticks.map(&:first)
    assert_equal 1, numbers[0]
    assert_operator numbers[1], :>=, 4, "the ticks missed while the block ran are skipped, not caught up"
    assert_equal numbers.sort.uniq, numbers
    ticks.each { |n, at| assert_operator at, :>=, start + (n * INTERVAL), "tick #{n} came early" }
  end

  def test_throttled_loop_runs_count_times_the_first_at_once
    start = now
    outcome = run_in_fiber do
      seen = []
      [UringMachine.throttled_loop(1 / INTERVAL, count: 3) { |n| seen << [n, now] }, seen]
    end
    value, ticks = outcome
    assert_nil value
    assert_equal 3, ticks.size
    assert_equal 0, ticks[0][0]
    ticks.each { |n, at| assert_operator at, :>=, start + (n * INTERVAL), "time #{n} came early" }
  end

  def test_throttled_loop_bad_input
    run_in_fiber do
      assert_raises(ArgumentError) { UringMachine.throttled_loop { 1 } }
      assert_raises(ArgumentError) { UringMachine.throttled_loop(10, interval: 1) { 1 } }
      assert_raises(ArgumentError) { UringMachine.throttled_loop(0) { 1 } }
      assert_raises(TypeError) { UringMachine.throttled_loop("fast") { 1 } }
      assert_raises(ArgumentError) { UringMachine.throttled_loop(10, count: -1) { 1 } }
      assert_raises(ArgumentError) { UringMachine.every(Float::INFINITY) { 1 } }
      assert_raises(ArgumentError) { UringMachine.every(1) }
    end
  end

  def test_after_runs_the_block_in_a_fiber_after_the_delay
    start = now
    value, at = run_in_fiber { UringMachine.after(INTERVAL) { [:later, now] }.join }
    assert_equal :later, value
    assert_operator at, :>=, start + INTERVAL
  end

  def test_after_is_cancelled_by_stopping_its_fiber
    ran = []
    value = run_in_fiber do
      timer = UringMachine.after(30) { ran << :block }
      pass_control
      timer.stop(:cancelled).join
    end
    assert_equal :cancelled, value
    assert_empty ran
  end

  def test_spin_loop_runs_until_stopped
    [{}, { rate: 1000 }].each do |options|
      outcome = run_in_fiber do
        me = Fiber.current
        looper = UringMachine.spin_loop(:tick, **options) do |message|
          me << message
          UringMachine.receive # one round per go
        end
        rounds = Array.new(3) do
          UringMachine.receive.tap { looper << :go }
        end
        [rounds, looper.stop.join, looper.alive?]
      end
      assert_equal [%i[tick tick tick], nil, false], outcome, options.inspect
    end
  end
end

class TestKitTimersMachine < Minitest::Test
  include KitTimerCases
  include LayerOnMachine
end

class TestKitTimersScheduler < SchedulerTest
  include KitTimerCases
  include LayerOnScheduler
end
