# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# A scheduled fiber kills (or raises into) a plain thread blocked in IO#read and joins it, as
# CRuby's test_io.rb test_read_buffer_error does. Ruby wakes such a thread with a signal and,
# when that first one comes just before the thread's syscall starts, re-sends it from a
# process-wide timer; the ring's wait must not swallow the retries, or the thread sleeps on and
# the join never returns. The thread's read buffer is left as it was, as in plain Ruby. The race needs load, so busy processes run beside it, and the rounds
# run in a child Ruby that is killed (and the test fails) if a round hangs. UM_STRESS=1: 10x.
class TestSchedulerThreadInterrupts < Minitest::Test
  LIB = File.expand_path("../lib", __dir__)
  ROUNDS = ENV["UM_STRESS"] ? 10_000 : 1000
  LIMIT = 60

  SCRIPT = <<~RUBY
    require "uring_machine"
    $stdout.sync = true
    how, rounds = ARGV[0].to_sym, Integer(ARGV[1])
    Fiber.set_scheduler(scheduler = UringMachine::Scheduler.new)
    Fiber.schedule do
      rounds.times do |i|
        r, w = IO.pipe
        got = +"kept"
        thread = Thread.new do
          Thread.current.report_on_exception = false
          r.read(5, got)
        end
        Thread.pass until thread.stop?
        how == :kill ? thread.kill : thread.raise(IOError, "stop")
        outcome = begin
          thread.value
        rescue IOError => e
          e.message
        end
        raise "round \#{i}: \#{outcome.inspect}, buffer \#{got.inspect}" unless [nil, "stop"].include?(outcome) && got == "kept"
        [r, w].each(&:close)
        $stdout.puts i if (i % 50).zero?
      end
    end
    scheduler.close
    $stdout.puts "done"
  RUBY

  def setup
    @busy = Array.new(2) { Process.spawn(RbConfig.ruby, "-e", "loop {}") }
  end

  def teardown
    @busy.each do |pid|
      Process.kill(:KILL, pid)
      Process.wait(pid)
    end
  end

  # The child's output once it exited; fails when it is still running after LIMIT seconds.
  def run_rounds(how)
    IO.popen([RbConfig.ruby, "-w", "-I", LIB, "-e", SCRIPT, how.to_s, ROUNDS.to_s], err: %i[child out]) do |out|
      lines = []
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + LIMIT
      loop do
        remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        unless remaining.positive? && out.wait_readable(remaining)
          Process.kill(:KILL, out.pid)
          flunk "a join hung (progress printed: #{lines.last.inspect}, of #{ROUNDS} rounds): the thread never woke"
        end
        line = out.gets or break
        lines << line.chomp
      end
      lines
    end
  end

  def test_killing_a_thread_blocked_in_a_read
    lines = run_rounds(:kill)
    assert_equal "done", lines.last, lines.join("\n")
    assert $?.success?
  end

  def test_raising_into_a_thread_blocked_in_a_read
    lines = run_rounds(:raise)
    assert_equal "done", lines.last, lines.join("\n")
    assert $?.success?
  end
end
