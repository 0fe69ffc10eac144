# frozen_string_literal: true

require_relative "scheduler_helper"
require "socket"
require "tempfile"

# Ruby 3.4+ runs CRuby's own IO.copy_stream (under a scheduler that has no io_splice) in
# blocking_operation_wait's worker thread, and that copy asks the fiber's scheduler to wait for
# its descriptors from there. io_wait called on a thread that is not the scheduler's waits on
# that thread, as Ruby does without a scheduler.
class TestSchedulerForeignThreadWait < SchedulerTest
  # CRuby's copy_stream is left to itself.
  class SchedulerWithoutSplice < UringMachine::Scheduler
    undef_method :io_splice
  end

  # [what the block gave, on another thread] from a fiber of the scheduler (which is then
  # bound to its own thread).
  def from_another_thread(&block)
    with_scheduler do |scheduler|
      result = nil
      schedule_fiber do
        result = Thread.new do
          Thread.current.report_on_exception = false
          [:ok, block.call(scheduler)]
        rescue StandardError => e
          [:error, e.class]
        end.value
      end
      Fiber.set_scheduler(nil)
      result
    end
  end

  def test_io_wait_from_another_thread_waits_there
    with_pipe do |r, w|
      assert_equal [:ok, IO::READABLE], from_another_thread { |scheduler|
        writer = Thread.new { w.write("x") } # once this thread waits, or before: either way, ready
        scheduler.io_wait(r, IO::READABLE, nil).tap { writer.join }
      }
      assert_equal [:ok, IO::WRITABLE], from_another_thread { |scheduler| scheduler.io_wait(w, IO::WRITABLE, nil) }
    end
  end

  def test_io_wait_from_another_thread_times_out_there
    with_pipe do |r, _w|
      assert_equal [:ok, false], from_another_thread { |scheduler| scheduler.io_wait(r, IO::READABLE, 0.01) }
    end
  end

  def test_io_wait_from_another_thread_with_bad_arguments
    with_pipe do |r, _w|
      assert_equal [:error, TypeError], from_another_thread { |s| s.io_wait(:not_io, IO::READABLE, nil) }
      assert_equal [:error, ArgumentError], from_another_thread { |s| s.io_wait(r, 0, nil) }
    end
  end

  # A socket into a file: the writer sends its second half only once the first reached the
  # file, so the copy finds the socket empty and waits for it at least once.
  def test_cruby_copy_stream_from_a_pipe_waits_under_a_scheduler_without_io_splice
    first = Random.new(3).bytes(64 * 1024)
    second = Random.new(4).bytes(64 * 1024)
    r, w = UNIXSocket.pair
    dst = Tempfile.create("um-foreign-wait")
    writer = Thread.new do
      w.write(first)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + RUN_LIMIT
      Thread.pass until File.size(dst.path) == first.bytesize || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      w.write(second)
      w.close
    end
    count = Thread.new do
      scheduler = SchedulerWithoutSplice.new
      Fiber.set_scheduler(scheduler)
      copied = nil
      # CRuby asks the scheduler only while a non-blocking fiber runs on the thread (else it
      # polls by itself): one keeps running until the copy is done.
      Fiber.schedule { scheduler.machine.snooze while copied.nil? }
      Fiber.schedule { copied = IO.copy_stream(r, dst) }
      Fiber.set_scheduler(nil)
      copied
    end.value
    writer.join
    assert_equal first.bytesize + second.bytesize, count
    assert File.binread(dst.path) == first + second, "the bytes copied"
  ensure
    [r, w, dst].each { |io| io&.close unless io&.closed? }
    File.unlink(dst.path) if dst
  end
end
