# frozen_string_literal: true

require_relative "test_helper"
require "timeout"
require_relative "support/timed_calls"
require_relative "support/child_ruby"

# Every timed API given odd durations (huge Integers and Floats, Infinity, NaN, negatives,
# Rationals, nil, a String, objects with to_f or divmod; see support/timed_calls.rb): under
# UringMachine::Scheduler and on the Machine, each gives plain Ruby's outcome for the same
# call (the same exception class, returns, or still asleep after a moment), a duration past
# the clock's range sleeps and never fires, and nothing ends the process with a Rust panic
# (`fatal`, which no rescue catches): ours run in child processes, all at once, and each must
# exit cleanly. Plain Ruby's outcomes are taken live, in threads of this process.
class TestDurations < Minitest::Test
  CHILD = File.expand_path("support/timed_calls.rb", __dir__)
  CHILD_LIMIT = 60

  # The rows run in child processes: [side, row] (support/timed_calls.rb).
  OURS = TimedCalls::CRUBY.keys.map { |row| ["cruby", row] } +
         TimedCalls::HOOKS.keys.map { |row| ["hooks", row] } +
         TimedCalls::MACHINE.keys.map { |row| ["machine", row] }

  # Durations whose nanoseconds overflow CRuby's 64-bit hrtime: plain Thread#join, Queue#pop
  # (and IO#timeout on 3.3) give up at once there, a CRuby bug. We wait, as for any duration
  # too long to ever pass.
  HRTIME_OVERFLOW = { "1e12" => :asleep, "2**62" => :asleep }.freeze

  class << self
    # Plain Ruby's outcomes: row => { value label => outcome }, every row at once. Timeout's
    # is taken on 3.1 only: from 3.2 on, its timeout thread spins on NaN and dies on 1e20.
    def plain
      @plain ||= begin
        rows = TimedCalls::CRUBY.keys
        rows -= ["Timeout.timeout"] if TimedCalls.ruby_at_least?("3.2")
        rows.to_h { |row| [row, Thread.new { TimedCalls.plain(row) }] }.transform_values(&:value)
      end
    end

    # Our outcomes: [side, row] => [stdout, stderr, Process::Status], one child process each.
    def ours
      @ours ||= OURS.to_h { |key| [key, Thread.new { run_child(*key) }] }.transform_values(&:value)
    end

    # One killed at CHILD_LIMIT fails its test by its status.
    def run_child(side, row)
      child = ChildRuby.run(CHILD, side, row, limit: CHILD_LIMIT)
      [child.out, child.err, child.status]
    end
  end

  def plain(row)
    self.class.plain.fetch(row)
  end

  # A timeout's outcomes from Kernel#sleep's: where that sleep returns, the timer fires.
  def fired(outcomes, as)
    outcomes.transform_values { |o| o == :returned ? as : o }
  end

  def assert_outcomes(side, row, expected)
    out, err, status = self.class.ours.fetch([side, row])
    assert status.success?, "#{row}: the child process did not exit cleanly (#{status.inspect}):\n#{err[0, 2000]}"
    assert_nil err[/.*(panicked|\[BUG\]|fatal).*/], "#{row}: the child reported a crash"
    got = out.lines.to_h { |line| line.chomp.split("\t", 2) }
    assert_equal(side == "machine" ? "0.001" : "ok", got.delete("(afterwards)"), "#{row}: unusable afterwards")
    wrong = expected.filter_map do |label, want|
      "#{label}: plain Ruby's rule gives #{want}, ours #{got[label].inspect}" unless got[label] == want.to_s
    end
    assert_empty wrong, "#{row} under #{side}:\n#{wrong.join("\n")}"
  end

  def test_kernel_sleep
    # sleep(nil): TypeError on 3.1 (core_ext's SleepNilArgument: the hook cannot tell it from
    # Mutex#sleep's nil), forever from 3.3 on, as in plain Ruby.
    assert_outcomes("cruby", "sleep", plain("sleep"))
  end

  def test_mutex_sleep
    assert_outcomes("cruby", "Mutex#sleep", plain("Mutex#sleep"))
  end

  def test_condition_variable_wait
    assert_outcomes("cruby", "ConditionVariable#wait", plain("ConditionVariable#wait"))
  end

  def test_io_select
    assert_outcomes("cruby", "IO.select", plain("IO.select"))
  end

  def test_io_wait_readable
    assert_outcomes("cruby", "IO#wait_readable", plain("IO#wait_readable"))
  end

  # What reaches the block hook depends on CRuby's own Thread#join (block itself: see
  # test_scheduler_block).
  def test_thread_join
    expected = plain("Thread#join")
    unless TimedCalls.ruby_at_least?("3.4")
      # 3.3 calls block once with the caller's limit: block decides (3.1 calls it again each
      # time it times out, which core_ext's ThreadJoinLimit ends as plain Ruby would).
      expected = expected.merge(HRTIME_OVERFLOW)
    end
    # From 3.4 on, CRuby checks its own (overflowed) limit before calling block: as plain Ruby.
    assert_outcomes("cruby", "Thread#join", expected)
  end

  def test_queue_pop
    skip "Queue#pop(timeout:) is Ruby 3.2+" unless TimedCalls.ruby_at_least?("3.2")
    assert_outcomes("cruby", "Queue#pop", plain("Queue#pop").merge(HRTIME_OVERFLOW))
  end

  def test_io_timeout
    skip "IO#timeout is Ruby 3.2+" unless TimedCalls.ruby_at_least?("3.2")
    assert_outcomes("cruby", "IO#timeout", plain("IO#timeout").merge(HRTIME_OVERFLOW))
  end

  # Timeout.timeout runs its block without a timer for nil and zero (asking the duration
  # #zero?), and hands anything else to timeout_after, which converts it as Kernel#sleep does:
  # what Ruby 3.1's Timeout does with it (its timer thread sleeps that long).
  def test_timeout_timeout
    expected = fired(plain("sleep"), "Timeout::Error").to_h do |label, outcome|
      value = TimedCalls::VALUES.fetch(label)
      untimed = begin
        value.nil? || value.zero?
      rescue NoMethodError
        next [label, "NoMethodError"]
      end
      [label, untimed ? :asleep : outcome]
    end
    assert_equal expected, plain("Timeout.timeout") unless TimedCalls.ruby_at_least?("3.2")
    assert_outcomes("cruby", "Timeout.timeout", expected)
  end

  def test_scheduler_kernel_sleep
    assert_outcomes("hooks", "Scheduler#kernel_sleep", plain("sleep").merge("nil" => :asleep))
  end

  # block converts its timeout as its callers Thread#join and Queue#pop do (Float()): a negative
  # one has passed; Infinity, NaN and anything past the clock's range never pass.
  def test_scheduler_block
    assert_outcomes("hooks", "Scheduler#block", plain("Thread#join").merge(HRTIME_OVERFLOW))
  end

  def test_scheduler_timeout_after
    assert_outcomes("hooks", "Scheduler#timeout_after", fired(plain("sleep"), "RuntimeError").merge("nil" => :asleep))
  end

  def test_scheduler_io_wait
    assert_outcomes("hooks", "Scheduler#io_wait", plain("IO#wait_readable"))
  end

  # The Machine API converts durations as Kernel#sleep does; Machine#sleep(nil) stays a
  # TypeError (Machine#suspend is the wait without end), a nil timeout means no timeout.
  def test_machine_sleep
    assert_outcomes("machine", "Machine#sleep", plain("sleep").merge("nil" => "TypeError"))
  end

  def test_machine_timeout
    expected = fired(plain("sleep"), "UringMachine::TimeoutError").merge("nil" => :asleep)
    assert_outcomes("machine", "Machine#timeout", expected)
  end

  def test_cancel_after
    expected = fired(plain("sleep"), "UringMachine::Cancel").merge("nil" => :asleep)
    assert_outcomes("machine", "UringMachine.cancel_after", expected)
  end

  def test_move_on_after
    expected = fired(plain("sleep"), :returned).merge("nil" => :asleep)
    assert_outcomes("machine", "UringMachine.move_on_after", expected)
  end
end
