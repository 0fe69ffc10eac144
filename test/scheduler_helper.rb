# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/pipes"
require "digest"
require "io/wait"

# Helpers for the UringMachine::Scheduler tests. Every test body runs in a fresh thread with a
# fresh scheduler, so a broken scheduler cannot poison the main thread, and every run is
# bounded: a hang fails the test instead of hanging the suite.
module SchedulerTestHelper
  include Pipes

  # Upper bound for one with_scheduler run, in seconds.
  RUN_LIMIT = 30

  def setup
    super
    @fiber_errors = Thread::Queue.new
  end

  # Runs the block in a new thread whose scheduler is a fresh UringMachine::Scheduler, then
  # sets the scheduler back to nil (which runs it until every fiber finished). Returns the
  # block's value; re-raises the block's error or the first error of a fiber started with
  # schedule_fiber.
  def with_scheduler(limit: RUN_LIMIT, &block)
    finish(scheduler_thread(&block), limit: limit)
  end

  # Starts (and returns) a thread that runs the block under a fresh scheduler.
  def scheduler_thread
    Thread.new do
      Thread.current.report_on_exception = false
      scheduler = UringMachine::Scheduler.new
      Fiber.set_scheduler(scheduler)
      begin
        yield scheduler
      ensure
        Fiber.set_scheduler(nil)
      end
    end
  end

  # Joins a thread started by scheduler_thread within +limit+ seconds (or fails the test),
  # re-raises a recorded fiber failure, and returns the thread's value.
  def finish(thread, limit: RUN_LIMIT)
    unless thread.join(limit)
      thread.kill
      thread.join(2)
      flunk "scheduler thread did not finish within #{limit}s (hang?)"
    end
    raise @fiber_errors.pop unless @fiber_errors.empty?

    thread.value
  end

  # Fiber.schedule, recording any exception so that the test fails with it after the run.
  def schedule_fiber(*args, &block)
    errors = @fiber_errors
    Fiber.schedule do
      block.call(*args)
    rescue Exception => e # rubocop:disable Lint/RescueException
      errors << e
      nil
    end
  end

  # Runs the block in a non-blocking fiber under a fresh scheduler, runs that scheduler to its
  # end, and returns the block's value (its failure fails the test).
  def in_scheduled_fiber(limit: RUN_LIMIT, &block)
    with_scheduler(limit: limit) do
      result = nil
      schedule_fiber { result = block.call }
      Fiber.set_scheduler(nil)
      result
    end
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Seconds taken by the block.
  def elapsed
    start = monotonic
    yield
    monotonic - start
  end

  # Call from a scheduled fiber: a writer fiber sends +payload+ a little later while this fiber
  # waits in a read; returns what was read. Proves the current scheduler still does pipe I/O.
  def pipe_roundtrip(payload = "still alive")
    r, w = IO.pipe
    Fiber.schedule do
      sleep 0.001
      w.write(payload)
    ensure
      w.close
    end
    r.read
  ensure
    r&.close
    w&.close
  end

  # The ring ops (op => count, zeros left out) the scheduler's machine ran during the block.
  def ring_ops_during(scheduler)
    before = scheduler.machine.metrics[:ops]
    yield
    scheduler.machine.metrics[:ops].to_h { |op, n| [op, n - before.fetch(op, 0)] }.reject { |_, n| n.zero? }
  end

  def ruby_at_least?(version)
    Gem::Version.new(RUBY_VERSION) >= Gem::Version.new(version)
  end

  # Raises the open-files limit to at least +count+ (or skips the test).
  def ensure_fd_limit(count)
    soft, hard = Process.getrlimit(:NOFILE)
    return if soft >= count

    skip "needs #{count} file descriptors, hard limit is #{hard}" if hard < count
    Process.setrlimit(:NOFILE, count, hard)
  end
end

class SchedulerTest < Minitest::Test
  include SchedulerTestHelper
end
