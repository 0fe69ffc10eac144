# frozen_string_literal: true

require_relative "scheduler_helper"

# Wrong input raises a Ruby exception (never crashes or hangs), and the scheduler keeps working.
class TestSchedulerBadInput < SchedulerTest
  # Runs +check+ in a scheduled fiber, then proves the same scheduler still does pipe I/O.
  def assert_still_usable(&check)
    got = with_scheduler do |scheduler|
      got = {}
      schedule_fiber do
        check.call(scheduler)
        got[:after] = pipe_roundtrip("usable")
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal "usable", got[:after], "the scheduler broke after bad input"
  end

  # io_read's arguments in the order of the interface the extension was built for.
  def io_read_args(io, buffer, length)
    return [io, buffer, 0, length] if UringMachine::Scheduler::INTERFACE_VERSION >= 4

    ruby_at_least?("3.2") ? [io, buffer, length, 0] : [io, buffer, length]
  end

  def test_reading_and_writing_closed_ios
    assert_still_usable do
      r, w = IO.pipe
      r.close
      w.close
      assert_raises(IOError) { r.read(1) }
      assert_raises(IOError) { r.gets }
      assert_raises(IOError) { r.readpartial(1) }
      assert_raises(IOError) { w.write("x") }
      assert_raises(IOError) { r.wait_readable(0.01) }
    end
  end

  def test_reading_a_write_end_and_writing_a_read_end
    assert_still_usable do
      with_pipe do |r, w|
        assert_raises(IOError) { w.read(1) }
        assert_raises(IOError) { r.write("x") }
      end
    end
  end

  def test_invalid_lengths
    assert_still_usable do
      with_pipe do |r, w|
        w.write("abc")
        assert_raises(ArgumentError) { r.read(-1) }
        assert_raises(ArgumentError) { r.readpartial(-1) }
        assert_raises(ArgumentError) { r.read_nonblock(-5) }
        assert_raises(ArgumentError) { r.sysread(-1) }
        assert_equal "", r.read(0)
        assert_equal "abc", r.readpartial(3)
      end
    end
  end

  def test_io_wait_with_wrong_types
    assert_still_usable do |scheduler|
      with_pipe do |r, _w|
        assert_raises(TypeError) { scheduler.io_wait(:not_io, IO::READABLE, nil) }
        assert_raises(TypeError) { scheduler.io_wait(r, "1", nil) }
        assert_raises(TypeError, ArgumentError) { scheduler.io_wait(r, IO::READABLE, "soon") }
      end
    end
  end

  def test_io_wait_on_a_closed_io
    assert_still_usable do |scheduler|
      r, w = IO.pipe
      r.close
      w.close
      assert_raises(IOError) { scheduler.io_wait(r, IO::READABLE, 0.01) }
    end
  end

  def test_kernel_sleep_with_bad_durations
    assert_still_usable do |scheduler|
      assert_raises(ArgumentError) { scheduler.kernel_sleep(-1) }
      assert_raises(ArgumentError) { sleep(-0.5) }
      assert_raises(TypeError) { scheduler.kernel_sleep("1") }
      assert_raises(TypeError) { sleep("1") }
      assert_raises(ArgumentError) { scheduler.kernel_sleep(1, 2) }
    end
  end

  def test_io_read_and_io_write_with_a_non_buffer
    skip "io_read/io_write are Ruby 3.1+ hooks" unless ruby_at_least?("3.1")

    assert_still_usable do |scheduler|
      with_pipe do |r, w|
        assert_raises(TypeError) { scheduler.io_read(*io_read_args(r, "not a buffer", 1)) }
        assert_raises(TypeError) { scheduler.io_write(*io_read_args(w, "not a buffer", 1)) }
        assert_raises(TypeError) { scheduler.io_read(*io_read_args(:not_io, IO::Buffer.new(8), 1)) }
      end
    end
  end

  # A length beyond the buffer (or negative) must be refused: raised, or a negative errno.
  def test_io_read_and_io_write_with_lengths_beyond_the_buffer
    skip "io_read/io_write are Ruby 3.1+ hooks" unless ruby_at_least?("3.1")

    assert_still_usable do |scheduler|
      with_pipe do |r, w|
        w.write("x" * 64)
        buffer = IO::Buffer.new(8)
        [100, -1].each do |length|
          [[:io_read, r], [:io_write, w]].each do |hook, io|
            result = begin
              scheduler.public_send(hook, *io_read_args(io, buffer, length))
            rescue ArgumentError, IOError => e
              e
            end
            refused = result.is_a?(Exception) || (result.is_a?(Integer) && result.negative?)
            assert refused, "#{hook} with length #{length} on an 8-byte buffer returned #{result.inspect}"
          end
        end
      end
    end
  end

  def test_process_wait_with_wrong_types
    assert_still_usable do |scheduler|
      assert_raises(TypeError) { scheduler.process_wait("1", 0) }
      assert_raises(TypeError) { scheduler.process_wait(1, "0") }
    end
  end

  def test_address_resolve_with_wrong_types
    assert_still_usable do |scheduler|
      assert_raises(TypeError) { scheduler.address_resolve(nil) }
      assert_raises(TypeError) { scheduler.address_resolve(42) }
    end
  end

  def test_unblock_with_something_that_is_not_a_fiber
    assert_still_usable do |scheduler|
      assert_raises(TypeError, ArgumentError) { scheduler.unblock(nil, :not_a_fiber) }
    end
  end

  def test_unblock_with_a_fiber_of_another_thread
    other = Thread.new { UringMachine::Machine.new.spin { :never_runs } }.value
    assert_still_usable do |scheduler|
      error = assert_raises(ArgumentError) { scheduler.unblock(nil, other) }
      assert_match(/another thread/, error.message)
    end
  end

  def test_unblock_with_a_plain_fiber_of_another_thread
    created = Thread.new { Fiber.new { :never_runs } }.value
    finished = Thread.new { Fiber.new { :ran }.tap(&:resume) }.value
    assert_still_usable do |scheduler|
      [created, finished].each do |fiber|
        error = assert_raises(ArgumentError) { scheduler.unblock(nil, fiber) }
        assert_match(/another thread/, error.message)
      end
    end
  end

  def test_fiber_schedule_without_a_block
    assert_still_usable do
      assert_raises(ArgumentError) { Fiber.schedule }
    end
  end
end
