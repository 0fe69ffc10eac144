# frozen_string_literal: true

require_relative "scheduler_helper"
require "timeout"

# What CRuby's own test_timeout.rb, test_thread_cv.rb and test_process.rb check, under the
# scheduler: each call ends as it does in plain Ruby (rake test:cruby_stdlib runs those files).
class TestSchedulerLikePlainRuby < Minitest::Test
  include SchedulerTestHelper

  # Timeout's default error inside the block: Ruby 3.1's timeout gem (0.2) throws past every
  # rescue; from 3.3 on (0.4) it is a Timeout::ExitException, which `rescue Exception` catches
  # and `rescue => e` not, and Timeout::Error outside.
  THROWS_PAST_RESCUE = !defined?(Timeout::ExitException)

  def in_fiber(&block)
    with_scheduler do
      result = nil
      schedule_fiber { result = block.call }
      Fiber.scheduler.run
      result
    end
  end

  def test_timeout_yields_its_duration
    assert_equal [5, :ok], in_fiber { Timeout.timeout(5) { |s| [s, :ok] } }
  end

  def test_timeout_is_not_caught_by_a_rescue_in_the_block
    rescued, ensured, raised = in_fiber do
      rescued = nil
      ensured = false
      raised = begin
        Timeout.timeout(0.01) do
          sleep 3
        rescue StandardError => e
          rescued = e
        ensure
          ensured = true
        end
        nil
      rescue Timeout::Error => e
        [e.class, e.message]
      end
      [rescued, ensured, raised]
    end
    assert_nil rescued
    assert ensured
    assert_equal [Timeout::Error, "execution expired"], raised
  end

  # What `rescue Exception` in the block sees of Timeout's default, and what leaves the block:
  # nothing, then Timeout::Error, on Ruby 3.1 (a throw, [Bug #8730]); a Timeout::ExitException,
  # which re-raised is Timeout::Error outside, from 3.3 on (test_raises_exception_internally).
  # The same as plain Timeout on a thread without a scheduler.
  def test_what_rescue_exception_sees_of_the_default_timeout
    run = lambda do
      inside = nil
      outside = begin
        Timeout.timeout(0.01) do
          sleep 3
        rescue Exception => e # rubocop:disable Lint/RescueException
          inside = e.class
          raise
        end
      rescue Timeout::Error => e
        [e.class, e.message]
      end
      [inside, outside]
    end
    plain = Thread.new(&run).value
    assert_equal [THROWS_PAST_RESCUE ? nil : Timeout::ExitException, [Timeout::Error, "execution expired"]], plain
    assert_equal plain, in_fiber(&run)
  end

  def test_a_given_exception_class_is_rescued_in_the_block
    error = Class.new(RuntimeError)
    rescued = in_fiber do
      Timeout.timeout(0.01, error) do
        sleep 3
      rescue error => e
        e
      end
    end
    assert_instance_of error, rescued
    assert_equal "execution expired", rescued.message
  end

  def test_timeout_that_does_not_fire_leaves_no_catch_behind
    assert_equal(:thrown, in_fiber { catch(:outer) { Timeout.timeout(5) { throw :outer, :thrown } } })
    assert_equal(%i[ok ok], in_fiber { Array.new(2) { Timeout.timeout(5) { sleep(0.001) && :ok } } })
  end

  # TypeError from Ruby 3.1's Timeout (the hook converts it as CRuby does), ArgumentError from
  # 4.0's, which compares it with 0 first: whatever this Ruby's plain Timeout raises.
  def test_a_timeout_duration_that_is_no_number_fails_as_without_a_scheduler
    duration = Object.new
    def duration.zero? = false
    plain = Thread.new { Timeout.timeout(duration) { sleep 0.1 } rescue $! }.value
    assert_kind_of StandardError, plain
    assert_raises(plain.class) { in_fiber { Timeout.timeout(duration) { sleep 0.1 } } }
  end

  # test_timeout.rb's test_enumerator_next: the block's fiber resumed the enumerator's, which
  # sleeps; Ruby's own Timeout raises in whatever fiber runs, and so do we: through Fiber#raise
  # along the resume where the enumerator's fiber waits in the ring (3.3+), through the
  # watchdog where its sleep blocks the thread (3.1, whose Enumerator fibers are blocking).
  def test_timeout_reaches_the_fiber_an_enumerator_resumed
    outcome = in_fiber do
      enum = (source = Object.new).to_enum
      def source.each = sleep
      Timeout.timeout(0.01) { enum.next }
    rescue Timeout::Error => e
      e.message
    end
    assert_equal "execution expired", outcome
  end

  # test_timeout.rb's test_timeout: a block that never waits never comes back to the event
  # loop, so the ring's timer cannot end it; the watchdog thread raises in it, as Ruby's own
  # timer thread does.
  def test_timeout_interrupts_a_block_that_never_waits
    assert_equal(:interrupted, in_fiber do
      Timeout.timeout(0.05) { nil while true }
    rescue Timeout::Error
      :interrupted
    end)
    assert_equal(:moved_on, in_fiber { UringMachine.move_on_after(0.05, with_value: :moved_on) { nil while true } })
  end

  # The Machine API's deadlines too, on a thread that never switched fibers, and with one
  # exception object used for several deadlines (each fires once, by the ring or the watchdog).
  def test_machine_deadlines_interrupt_a_block_that_never_waits
    outcomes = Thread.new do
      machine = UringMachine.machine
      error = RuntimeError.new("deadline")
      Array.new(2) do
        busy = begin
          machine.timeout(0.05, error) { nil while true }
        rescue RuntimeError => e
          e.message
        end
        waiting = begin
          machine.timeout(0.01, error) { machine.sleep(30) }
        rescue RuntimeError => e
          e.message
        end
        [busy, waiting]
      end
    end.value
    assert_equal [%w[deadline deadline]] * 2, outcomes
  end

  # A program (or a test suite) that kills every other thread kills the watchdog too: the next
  # timeout starts it again (whatever the killed one had planned).
  def test_a_killed_watchdog_is_started_again
    in_fiber { Timeout.timeout(5) { :started } }
    Thread.list.select { |t| t.name == "uring_machine timeout watchdog" }.each { |t| t.kill.join }
    assert_equal(:interrupted, in_fiber do
      Timeout.timeout(0.05) { nil while true }
    rescue Timeout::Error
      :interrupted
    end)
  end

  # The watchdog raises only in the fiber whose timeout passed: another fiber that keeps the
  # thread busy meanwhile is left alone, and the timeout is raised once it lets go.
  def test_a_busy_fiber_is_not_interrupted_for_another_fiber_s_timeout
    outcomes = in_fiber do
      waited = nil
      waiter = Fiber.schedule do
        waited = begin
          Timeout.timeout(0.01) { sleep 30 }
        rescue Timeout::Error
          :timed_out
        end
      end
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      spins = 0
      spins += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) - started < 0.3
      sleep 0.001 until waited
      [spins.positive?, waited, waiter.alive?]
    end
    assert_equal [true, :timed_out, false], outcomes
  end

  # test_thread.rb's test_join and test_join_limit_negative_*: Ruby 3.1 blocks again each time
  # the hook says the limit passed.
  def test_thread_join_with_a_limit_gives_nil_when_it_passes
    results = in_fiber do
      sleeper = Thread.new { sleep }
      waits = [0.01, -1, -0.1, -Float::INFINITY, -(2**62)].map { |limit| sleeper.join(limit) }
      sleeper.kill
      waits << sleeper.join(5).equal?(sleeper)
    end
    assert_equal [nil, nil, nil, nil, nil, true], results
  end

  # test_thread_cv.rb's test_condvar_wait_deadlock_2: the wait ends with Timeout::Error, and the
  # mutex is held again, as the block that locked it expects (Ruby 3.1's scheduler path did not).
  def test_a_wait_that_a_timeout_ends_holds_the_mutex_again
    outcome = in_fiber do
      mutex = Thread::Mutex.new
      cv = Thread::ConditionVariable.new
      mutex.synchronize do
        Timeout.timeout(0.01) { cv.wait(mutex) }
      rescue Timeout::Error
        [:timed_out, mutex.owned?]
      end
    end
    assert_equal [:timed_out, true], outcome
  end

  def test_condition_variable_wait_that_times_out_returns_nil
    results = in_fiber do
      mutex = Thread::Mutex.new
      cv = Thread::ConditionVariable.new
      timed_out = mutex.synchronize { [cv.wait(mutex, 0.01), mutex.owned?] }
      signalled = mutex.synchronize do
        Fiber.schedule { mutex.synchronize { cv.signal } }
        cv.wait(mutex, 30)
      end
      [timed_out, signalled]
    end
    assert_equal [nil, true], results[0]
    assert_kind_of Integer, results[1]
  end

  def test_sleep_errors_are_cruby_s
    errors = in_fiber do
      [-1, -1.0, -1r].map do |seconds|
        sleep(seconds)
      rescue ArgumentError => e
        e.message
      end
    end
    assert_equal ["time interval must not be negative"] * 3, errors
    assert_raises(ArgumentError) { in_fiber { sleep(1, 1) } }
  end

  def test_sleep_nil_is_what_this_ruby_says
    if RUBY_VERSION < "3.3"
      error = assert_raises(TypeError) { in_fiber { sleep(nil) } }
      assert_equal "can't convert NilClass into time interval", error.message
      assert_raises(TypeError) { in_fiber { Thread::ConditionVariable.allocate.wait(nil) } }
    else
      # Ruby 3.3 made sleep(nil) sleep until woken
      assert_equal(:woken, in_fiber do
        sleeper = Fiber.current
        Fiber.schedule { Fiber.scheduler.unblock(nil, sleeper) }
        sleep(nil)
        :woken
      end)
    end
  end

  # test_process.rb's test_wait_exception: another thread raises Interrupt into this one while
  # a fiber waits for a child; plain Ruby raises it in Process.wait, and so must we (a real
  # SIGINT still goes to the main fiber: test_signals.rb).
  def test_thread_raise_interrupt_reaches_the_waiting_fiber
    outcome = in_fiber do
      pid = Process.spawn("sleep 30")
      main = Thread.current
      raiser = Thread.new do
        Thread.pass until main.stop?
        main.raise Interrupt
      end
      begin
        Process.wait(pid)
        :not_interrupted
      rescue Interrupt
        :interrupted
      ensure
        raiser.join
        Process.kill(:KILL, pid)
        Process.wait(pid)
      end
    end
    assert_equal :interrupted, outcome
  end

  def test_thread_raise_reaches_the_fiber_whose_wait_it_interrupts
    outcome = in_fiber do
      main = Thread.current
      other = Fiber.schedule { sleep }
      raiser = Thread.new do
        Thread.pass until main.stop?
        main.raise ArgumentError, "from another thread"
      end
      begin
        sleep 30
        :slept
      rescue ArgumentError => e
        [e.message, e.backtrace.any? { |line| line.include?(__FILE__) }]
      ensure
        raiser.join
        Fiber.scheduler.unblock(nil, other)
      end
    end
    assert_equal ["from another thread", true], outcome
  end
end
