# frozen_string_literal: true

require_relative "layer_helper"

# Thread#fiber_lock: while its block runs, no other fiber of the thread runs, even while the
# locking fiber waits; the others' wake-ups wait their turn. Nested and exception-safe.
module FiberLockCases
  def test_other_fibers_wait_while_the_lock_is_held
    log = []
    run_in_fiber do
      other = UringMachine.spin do
        loop do
          log << :other
          pass_control
        end
      end
      pass_control
      Thread.current.fiber_lock do
        log << :locked
        wait(0.02) # a real wait: the other fiber stays put all the same
        pass_control
        log << :unlocking
      end
      pass_control
      other.stop
    end
    locked = log.index(:locked)
    assert_equal %i[locked unlocking], log[locked, 2], "nothing else ran while locked"
    assert_includes log[0...locked], :other
    assert_includes log[(locked + 2)..], :other, "it runs again once released"
  end

  def test_a_timer_that_fires_meanwhile_runs_after_the_lock
    log = []
    run_in_fiber do
      sleeper = UringMachine.spin do
        wait(0.005)
        log << :sleeper_woke
      end
      pass_control
      Thread.current.fiber_lock do
        wait(0.03)
        log << :lock_released
      end
      sleeper.join
    end
    assert_equal %i[lock_released sleeper_woke], log
  end

  def test_nested_and_released_by_an_exception
    log = []
    run_in_fiber do
      other = UringMachine.spin do
        pass_control
        log << :other
      end
      begin
        Thread.current.fiber_lock do
          Thread.current.fiber_lock { pass_control }
          pass_control
          log << :still_locked
          raise "out"
        end
      rescue RuntimeError
        log << :rescued
      end
      pass_control
      other.join
    end
    assert_equal %i[still_locked rescued other], log
  end

  def test_only_for_the_current_thread
    other = Thread.new { sleep }
    assert_raises(ThreadError) { other.fiber_lock { 1 } }
  ensure
    other&.kill&.join
  end
end

class TestFiberLockMachine < Minitest::Test
  include FiberLockCases
  include LayerOnMachine
end

class TestFiberLockScheduler < SchedulerTest
  include FiberLockCases
  include LayerOnScheduler
end
