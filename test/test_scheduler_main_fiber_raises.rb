# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"

# A program whose main fiber raises ends as a plain Ruby program does: the error is printed and
# the status is non-zero, after the fibers it left behind were stopped (their ensure blocks
# run). It does not wait for them: a crashed server must not stay up, dead. A program that ends
# normally still waits for every fiber, as the Fiber::Scheduler interface asks. Each case runs
# in a child Ruby, killed if it outlives LIMIT.
class TestSchedulerMainFiberRaises < Minitest::Test
  include ChildRuby::Assertions

  # A bound, not a race: these children take about 0.1 s (plus 0.2 s of sleep in one).
  LIMIT = 15

  PRELUDE = <<~RUBY
    require "uring_machine"
    $stdout.sync = true
    Fiber.set_scheduler(UringMachine::Scheduler.new)
  RUBY

  # A fiber that sleeps until it is stopped, and says so.
  SLEEPING_FIBER = <<~RUBY
    Fiber.schedule do
      sleep
    ensure
      puts "ensure ran"
    end
  RUBY

  # [Process::Status, stdout, stderr] of a child Ruby running +script+; flunks if it does not
  # exit within LIMIT seconds.
  def run_child(script)
    result = run_ruby("-w", "-e", PRELUDE + script, limit: LIMIT)
    [result.status, result.out, result.err]
  end

  def assert_crashed_with_boom(status, out, err)
    refute status.success?, "exit status #{status.inspect}"
    assert_equal 1, status.exitstatus, err
    assert_match(/boom \(RuntimeError\)/, err)
    assert_equal "ensure ran\n", out, err
  end

  def test_raise_with_a_fiber_sleeping_forever_exits
    status, out, err = run_child(SLEEPING_FIBER + <<~RUBY)
      raise "boom"
    RUBY
    assert_crashed_with_boom(status, out, err)
  end

  def test_raise_with_a_fiber_reading_a_pipe_exits
    status, out, err = run_child(<<~RUBY)
      r, _w = IO.pipe
      Fiber.schedule do
        r.read(1)
      ensure
        puts "ensure ran"
      end
      raise "boom"
    RUBY
    assert_crashed_with_boom(status, out, err)
  end

  # The close in an ensure clause the error passes through stops the fibers as well.
  def test_set_scheduler_nil_while_an_error_propagates_stops_the_fibers
    status, out, err = run_child(<<~RUBY)
      q = Thread::Queue.new
      Fiber.schedule do
        q.pop
      rescue UringMachine::Stop
        puts "ensure ran"
      end
      begin
        raise "boom"
      ensure
        Fiber.set_scheduler(nil)
        puts "closed"
      end
    RUBY
    refute status.success?
    assert_match(/boom \(RuntimeError\)/, err)
    assert_equal "ensure ran\nclosed\n", out, err
  end

  # $! is set in a rescue clause too: the error ended the main code's work.
  def test_set_scheduler_nil_in_a_rescue_clause_stops_the_fibers
    status, out, err = run_child(SLEEPING_FIBER + <<~RUBY)
      begin
        raise "boom"
      rescue RuntimeError
        Fiber.set_scheduler(nil)
        puts "closed"
      end
    RUBY
    assert status.success?, err
    assert_equal "ensure ran\nclosed\n", out, err
  end

  def test_a_normal_end_still_waits_for_the_fibers
    status, out, err = run_child(<<~RUBY)
      Fiber.schedule do
        sleep 0.2
        puts "slept"
      end
    RUBY
    assert status.success?, err
    assert_equal "slept\n", out
  end
end
