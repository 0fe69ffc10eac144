# frozen_string_literal: true

require_relative "test_helper"

class TestTime < MachineTest
  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def test_sleep_waits_at_least_the_duration
    t0 = monotonic
    assert_equal 0.02, machine.sleep(0.02)
    assert_operator monotonic - t0, :>=, 0.02
  end

  # Sleeping one after the other, at most one fiber would be asleep at a time. Natively all
  # 10,000 are; the bound leaves room for a slow start (Valgrind, a loaded machine: the first
  # sleepers may wake before the last ones started), not for sequential sleeps.
  def test_ten_thousand_fibers_sleep_concurrently
    woke = 0
    asleep = 0
    most_asleep = 0
    fibers = Array.new(10_000) do
      machine.spin do
        asleep += 1
        most_asleep = [most_asleep, asleep].max
        machine.sleep(0.5)
        asleep -= 1
        woke += 1
      end
    end
    machine.join(*fibers)
    assert_equal 10_000, woke
    assert_operator most_asleep, :>=, 100, "fibers asleep at once"
  end

  def test_sleep_rejects_bad_durations
    assert_raises(ArgumentError) { machine.sleep(-1) }
    assert_raises(TypeError) { machine.sleep("1") }
    assert_raises(RangeError) { machine.sleep(Float::NAN) } # as Kernel#sleep
  end

  def test_timeout_cancels_a_read_from_an_empty_pipe
    r, w = IO.pipe
    buffer = +"untouched"
    assert_raises(UringMachine::TimeoutError) do
      machine.timeout(0.05) { machine.read(r, buffer, 100) }
    end
    w << "later"
    machine.sleep(0.01)
    assert_equal "untouched", buffer, "the kernel must not write into the buffer after the timeout"
    assert_equal 5, machine.read(r, buffer, 100), "the pipe keeps the data the cancelled read did not take"
    assert_equal "later", buffer
  ensure
    [r, w].each(&:close)
  end

  def test_timeout_is_a_timeout_error
    assert_operator UringMachine::TimeoutError, :<, Timeout::Error
  end

  def test_timeout_returns_the_block_value_when_in_time
    assert_equal :done, machine.timeout(1) { machine.sleep(0.001); :done }
    # The cancelled timer must not fire later.
    machine.sleep(0.01)
    assert_equal :still_fine, machine.timeout(5) { :still_fine }
  end

  def test_timeout_with_custom_exception_class_and_instance
    assert_raises(ArgumentError) { machine.timeout(0.01, ArgumentError) { machine.sleep(1) } }
    custom = RuntimeError.new("custom")
    error = assert_raises(RuntimeError) { machine.timeout(0.01, custom) { machine.sleep(1) } }
    assert_same custom, error
    assert_raises(TypeError) { machine.timeout(0.01, 42) { machine.sleep(1) } }
    assert_raises(ArgumentError) { machine.timeout(1) }
  end

  def test_nested_timeouts_fire_the_inner_first
    error = assert_raises(ArgumentError) do
      machine.timeout(1, RuntimeError) { machine.timeout(0.01, ArgumentError) { machine.sleep(5) } }
    end
    assert_kind_of ArgumentError, error
  end

  def test_timeout_of_nil_means_no_timeout
    assert_equal 1, machine.timeout(nil) { 1 }
  end

  def test_timeout_in_one_fiber_leaves_others_alone
    r, w = IO.pipe
    other = machine.spin { machine.read(r, +"", 10) }
    assert_raises(UringMachine::TimeoutError) { machine.timeout(0.01) { machine.sleep(1) } }
    w << "x"
    assert_equal 1, machine.join(other)
  ensure
    [r, w].each(&:close)
  end
end
