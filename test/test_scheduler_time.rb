# frozen_string_literal: true

require_relative "scheduler_helper"
require "timeout"

class TestSchedulerTime < SchedulerTest
  class Stop < StandardError; end

  def test_a_thousand_sleeping_fibers_sleep_concurrently
    done = 0
    time = elapsed do
      with_scheduler do
        1000.times do
          schedule_fiber do
            sleep 0.1
            done += 1
          end
        end
      end
    end
    assert_equal 1000, done
    assert_operator time, :>=, 0.09
    assert_operator time, :<, 2, "1000 x sleep 0.1 took #{time}s: the sleeps did not overlap"
  end

  def test_sleep_lasts_at_least_its_duration_and_accepts_numeric_types
    times = with_scheduler do
      times = {}
      { float: 0.03, rational: 3r / 100, integer_zero: 0 }.each do |name, duration|
        schedule_fiber { times[name] = elapsed { sleep duration } }
      end
      times
    end
    assert_operator times[:float], :>=, 0.029
    assert_operator times[:rational], :>=, 0.029
    assert_operator times[:integer_zero], :<, 1
  end

  def test_sleep_zero_yields_to_other_fibers
    order = with_scheduler do
      order = []
      schedule_fiber do
        order << :a1
        sleep 0
        order << :a2
      end
      schedule_fiber { order << :b }
      Fiber.set_scheduler(nil)
      order
    end
    assert_equal %i[a1 b a2], order, "sleep 0 should let the other fiber run"
  end

  def test_ten_thousand_fibers_sleep_zero
    count = with_scheduler do
      count = 0
      10_000.times do
        schedule_fiber do
          sleep 0
          count += 1
        end
      end
      Fiber.set_scheduler(nil)
      count
    end
    assert_equal 10_000, count
  end

  def test_sleepers_wake_in_deadline_order
    order = with_scheduler do
      order = []
      [0.06, 0.02, 0.04].each { |d| schedule_fiber { sleep d; order << d } }
      order
    end
    assert_equal [0.02, 0.04, 0.06], order
  end

  def test_fiber_raise_wakes_a_fiber_sleeping_forever_from_another_fiber
    got = with_scheduler do
      got = nil
      sleeper = schedule_fiber do
        sleep
        got = :woke_without_exception
      rescue Stop => e
        got = e
      end
      schedule_fiber do
        sleep 0.01
        sleeper.raise(Stop, "wake up")
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_kind_of Stop, got
    assert_equal "wake up", got.message
  end

  def test_fiber_raise_wakes_a_fiber_sleeping_forever_from_the_root_fiber
    got = with_scheduler do
      got = nil
      sleeper = schedule_fiber do
        sleep
      rescue Stop => e
        got = e
      end
      sleeper.raise(Stop, "from root")
      refute sleeper.alive?
      got
    end
    assert_equal "from root", got&.message
  end

  def test_fiber_raise_cancels_a_long_timed_sleep
    time = elapsed do
      with_scheduler do
        sleeper = schedule_fiber do
          sleep 20
        rescue Stop
          nil
        end
        schedule_fiber do
          sleep 0.01
          sleeper.raise(Stop)
        end
      end
    end
    assert_operator time, :<, 5, "close waited for the timer of a fiber that was raised out of sleep"
  end

  def test_fiber_raise_during_a_read_leaves_the_pipe_usable
    got = with_scheduler do
      with_pipe do |r, w|
        got = []
        reader = schedule_fiber do
          r.read(5)
          got << :read_finished
        rescue Stop
          got << :stopped
          got << r.read(5)
        end
        schedule_fiber do
          sleep 0.01
          reader.raise(Stop)
          w.write("hello")
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal [:stopped, "hello"], got
  end

  def test_timeout_around_a_blocked_read_raises_and_leaves_the_io_usable
    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          got[:time] = elapsed do
            got[:error] = assert_raises(Timeout::Error) { Timeout.timeout(0.05) { r.read(5) } }
          end
          got[:after] = r.read(5)
        end
        schedule_fiber do
          sleep 0.2
          w.write("later")
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_kind_of Timeout::Error, got[:error]
    assert_operator got[:time], :<, 2
    assert_equal "later", got[:after], "data written after the timeout must be read intact"
  end

  def test_timeout_ends_a_wait_readable_that_has_a_longer_timeout_of_its_own
    took = with_scheduler do
      with_pipe do |r, _w|
        took = nil
        schedule_fiber do
          took = elapsed { assert_raises(Timeout::Error) { Timeout.timeout(0.05) { r.wait_readable(5) } } }
        end
        Fiber.set_scheduler(nil)
        took
      end
    end
    assert_operator took, :<, 2, "the timeout ended the wait, not the wait's own 5 s"
  end

  def test_timeout_with_a_custom_class_and_message
    error = with_scheduler do
      error = nil
      schedule_fiber { error = assert_raises(Stop) { Timeout.timeout(0.01, Stop, "custom") { sleep 5 } } }
      Fiber.set_scheduler(nil)
      error
    end
    assert_equal "custom", error.message
  end

  def test_timeout_that_does_not_expire_returns_the_value_and_never_fires_later
    got = with_scheduler do
      got = []
      schedule_fiber do
        got << Timeout.timeout(0.03) { sleep 0.001; :value }
        sleep 0.1 # past the old deadline: a stale timer would raise here
        got << :survived
      end
      got
    end
    assert_equal %i[value survived], got
  end

  def test_nested_timeouts
    got = with_scheduler do
      got = []
      schedule_fiber do
        Timeout.timeout(5) do
          Timeout.timeout(0.01, Stop) { sleep 5 }
        rescue Stop
          got << :inner
        end
        got << :outer_ok
      end
      got
    end
    assert_equal %i[inner outer_ok], got
  end

  def test_wait_readable_returns_nil_on_timeout_and_the_io_when_ready
    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          got[:timeout_elapsed] = elapsed { got[:timeout] = r.wait_readable(0.02) }
          got[:ready] = r.wait_readable(5)
          got[:data] = r.read(2)
          got[:writable] = w.wait_writable(1)
        end
        schedule_fiber do
          sleep 0.1
          w.write("ok")
        end
        Fiber.set_scheduler(nil)
        got.merge(r: r, w: w)
      end
    end
    assert_nil got[:timeout]
    assert_operator got[:timeout_elapsed], :>=, 0.015
    assert_same got[:r], got[:ready]
    assert_equal "ok", got[:data]
    assert_same got[:w], got[:writable]
  end

  def test_io_wait_hook_returns_false_on_timeout_and_the_mask_when_ready
    got = with_scheduler do |scheduler|
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          got[:timeout] = scheduler.io_wait(r, IO::READABLE, 0.01)
          w.write("x")
          got[:ready] = scheduler.io_wait(r, IO::READABLE, 1)
          got[:writable] = scheduler.io_wait(w, IO::WRITABLE | IO::READABLE, 1)
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_includes [false, nil], got[:timeout]
    assert_equal IO::READABLE, got[:ready] & IO::READABLE
    assert_equal IO::WRITABLE, got[:writable] & IO::WRITABLE
  end

  def test_io_timeout_makes_a_blocked_read_raise
    skip "IO#timeout= needs Ruby 3.2+" unless IO.method_defined?(:timeout=)

    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          r.timeout = 0.05
          got[:time] = elapsed { got[:error] = assert_raises(IO::TimeoutError) { r.read(1) } }
          r.timeout = nil
          got[:after] = r.read(3)
        end
        schedule_fiber do
          sleep 0.2
          w.write("abc")
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_kind_of IO::TimeoutError, got[:error]
    assert_operator got[:time], :<, 2
    assert_equal "abc", got[:after]
  end

  def test_a_nan_timeout_is_a_range_error_as_without_a_scheduler
    errors = in_scheduled_fiber do
      [-> { sleep(Float::NAN) }, -> { IO.select(nil, nil, nil, Float::NAN) }].map do |call|
        call.call
      rescue RangeError => e
        e.class
      end
    end
    assert_equal [RangeError, RangeError], errors
  end
end
