# frozen_string_literal: true

require_relative "scheduler_helper"
require "uring_machine/debugger"
require "stringio"
require_relative "support/child_ruby"

# The debugger's tracer driven through its controller's mailbox: each command is fed as a line
# of input, and the stops, the text the user would see and the program's own behaviour are
# checked. The same cases run with the Machine API and under the scheduler.
module DebuggerCases
  DEADLINE = 10

  def setup
    super
    @out = StringIO.new
    @controller = UringMachine::Debugger::Controller.new(input: :mailbox, output: @out, idle_timeout: 5)
    UringMachine::Debugger.attach(@controller)
  end

  def teardown
    UringMachine::Debugger.detach
    UringMachine::Trace.fiber_lock = true
    UringMachine::Trace.pause_timers = true
    super
  end

  def stops
    UringMachine::Debugger.tracer.stops.map { |path, line, fiber, event| [File.basename(path), line, fiber, event] }
  end

  # Feeds +lines+ from another thread once the tracer has stopped (+count+ stops seen).
  def feed_when_stopped(*lines, count: 1, pause: 0)
    Thread.new do
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + DEADLINE
      until UringMachine::Trace.state == :stopped && UringMachine::Debugger.tracer.stops.size >= count
        raise "the debugger did not stop: #{UringMachine::Trace.state} #{UringMachine::Debugger.tracer.stops.size}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

        Thread.pass
      end
      yield if block_given?
      sleep(pause) if pause.positive?
      @controller.feed(*lines)
    end
  end

  def helper(x)
    y = x * 2
    y + 1
  end

  def test_breakpoint_stops_at_the_next_line_and_evaluates_in_its_frame
    base = __LINE__
    result = run_in_fiber do
      a = 41
      UringMachine.breakpoint
      a += 1
      a
    end
    @controller.feed("a", "eval a * 2", "nosuchvariable", "help", "continue")
    assert_equal 42, result.call
    assert_equal [["test_debugger.rb", base + 4, :line]], stops.map { |f, l, _, e| [f, l, e] }
    text = @out.string
    assert_match(/^=> *#{base + 4}\|\s+a \+= 1$/, text, "the current line is marked")
    assert_match(/^ *#{base + 3}\|\s+UringMachine.breakpoint$/, text, "lines before it are shown")
    assert_match(/\(um\) a\n=> 41\n/, text)
    assert_match(/\(um\) eval a \* 2\n=> 82\n/, text)
    assert_match(/NameError: undefined local variable or method [`']nosuchvariable'/, text) # 3.4+ quotes 'name'
    assert_match(/next \(n\)\s+run to the next line of this fiber/, text)
  end

  def test_next_stays_in_the_fiber_and_in_the_frame
    base = __LINE__
    others = []
    result = run_in_fiber do
      busy = UringMachine.spin do
        loop do
          others << :ran # lines of another fiber, run while the traced one waits
          pass_control
        end
      end
      UringMachine.breakpoint
      b = helper(1)
      wait(0.02)
      c = b + 1
      busy.stop
      c
    end
    @controller.feed("next", "next", "next", "continue")
    assert_equal 4, result.call
    traced = stops.map { |_, _, fiber, _| fiber }.uniq
    assert_equal 1, traced.size, "every stop is in the traced fiber"
    assert_equal [base + 10, base + 11, base + 12, base + 13], stops.map { |_, l, _, _| l }
    refute_empty others, "the other fiber ran while the traced one was stepping"
  end

  def test_step_enters_a_call_and_finish_returns_from_it
    base = __LINE__
    result = run_in_fiber do
      UringMachine.breakpoint
      value = helper(2)
      value
    end
    helper_line = method(:helper).source_location[1]
    @controller.feed("step", "next", "finish", "next", "continue")
    assert_equal 5, result.call
    assert_equal [[base + 3, :line], [helper_line + 1, :line], [helper_line + 2, :line],
                  [helper_line + 3, :return], [base + 4, :line]], stops.map { |_, l, _, e| [l, e] }
    assert_match(/returning 5/, @out.string)
  end

  def test_where_shows_the_call_stack_and_trace_exposes_the_state
    seen = nil
    watcher = feed_when_stopped("where", "continue") do
      seen = [UringMachine::Trace.state, UringMachine::Trace.current_fiber, UringMachine::Trace.call_stack.dup]
    end
    fiber = nil
    result = run_in_fiber do
      fiber = Fiber.current
      nested_breakpoint
    end
    assert_equal :ok, result.call
    watcher.join
    state, traced, stack = seen
    assert_equal :stopped, state
    assert_same fiber, traced
    assert_match(/in [`'](\S+#)?nested_breakpoint'/, stack[0]) # 3.4+: 'Class#method'
    assert_match(/=>#0 .*test_debugger.rb:\d+:in [`'](\S+#)?nested_breakpoint'\n  #1 .*test_debugger.rb/, @out.string)
    assert_equal :off, UringMachine::Trace.state
  end

  def nested_breakpoint
    UringMachine.breakpoint
    :ok
  end

  def test_other_fibers_are_held_while_stopped_unless_told
    [true, false].each do |lock|
      UringMachine::Trace.fiber_lock = lock
      UringMachine::Debugger.tracer.stops.clear
      counts = []
      watcher = feed_when_stopped("continue") do
        counts << @ticks
        sleep 0.1 # time for the other fiber to run, if it (wrongly) could
        counts << @ticks
      end
      result = run_in_fiber do
        @ticks = 0
        ticker = UringMachine.spin { loop { @ticks += 1 and pass_control } }
        pass_control
        UringMachine.breakpoint
        pass_control
        ticker.stop
      end
      result.call
      watcher.join
      if lock
        assert_equal counts[0], counts[1], "the other fiber was held while stopped"
      else
        assert_operator counts[1], :>, counts[0], "with fiber_lock = false the other fiber ran"
      end
    end
  end

  def test_a_sleeping_fibers_timer_is_paused_while_stopped
    woke = stopped_at = nil
    watcher = feed_when_stopped("continue", pause: 0.6) { stopped_at = now }
    resumed_at = nil
    result = run_in_fiber do
      sleeper = UringMachine.spin do
        wait(0.3)
        woke = now
      end
      pass_control
      UringMachine.breakpoint
      resumed_at = now
      sleeper.join
    end
    result.call
    watcher.join
    assert_operator resumed_at - stopped_at, :>=, 0.55, "the prompt was up that long"
    assert_operator woke - resumed_at, :>=, 0.15, "the sleeper still had most of its 0.3 s to sleep"
    assert_operator woke - resumed_at, :<, 0.5
  end

  def test_fibers_lists_the_tree_and_what_each_waits_on
    base = __LINE__
    result = run_in_fiber do
      sleeper = UringMachine.spin { wait(5) }
      receiver = UringMachine.spin { UringMachine.receive }
      pass_control
      UringMachine.breakpoint
      receiver << :done
      receiver.join
      sleeper.stop
      :done
    end
    @controller.feed("fibers", "continue")
    assert_equal :done, result.call
    text = @out.string
    assert_match(/^\*\s+\d+ +fiber 0x\h+ \(.*test_debugger.rb:#{base + 1}\)  stopped here$/, text)
    assert_match(/^\s+\d+ +fiber 0x\h+ \(test\/test_debugger.rb:#{base + 2}\)  sleeping, [45]\.\d\d s left$/, text)
    assert_match(/^\s+\d+ +fiber 0x\h+ \(test\/test_debugger.rb:#{base + 3}\)  receiving \(mailbox empty\)$/, text)
    assert_match(/^run queue: /, text)
  end

  def test_switch_traces_another_fiber
    base = __LINE__
    other = nil
    watcher = feed_when_stopped do
      @controller.feed("fibers")
      deadline = now + DEADLINE
      Thread.pass until @out.string.include?("run queue:") || now > deadline
      number = @out.string[/^\s+(\d+) +fiber 0x\h+ \(.*test_debugger.rb:#{base + 10}\)/, 1]
      @controller.feed("switch 99", "switch #{number}", "next", "continue")
    end
    result = run_in_fiber do
      other = UringMachine.spin do
        wait(0.05)
        x = 1
        x + 1
      end
      pass_control
      UringMachine.breakpoint
      other.join
    end
    assert_equal 2, result.call
    watcher.join
    assert_match(/no fiber "99"/, @out.string)
    assert_equal [base + 17, base + 12, base + 13], stops.map { |_, l, _, _| l }
    assert_same other, stops[1][2], "after switch, the stops are in the other fiber"
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

class TestDebuggerMachine < Minitest::Test
  include DebuggerCases

  # Returns a callable that runs the block in a fiber to its end and gives its value.
  def run_in_fiber(&block)
    machine = UringMachine.machine
    -> { machine.join(machine.spin(&block)) }
  end

  def pass_control = UringMachine.machine.snooze
  def wait(seconds) = UringMachine.machine.sleep(seconds)
end

class TestDebuggerScheduler < SchedulerTest
  include DebuggerCases

  def run_in_fiber(&block)
    -> { with_scheduler { Fiber.schedule(&block).then { |f| UringMachine.machine_of(f).join(f) } } }
  end

  def pass_control = sleep(0)
  def wait(seconds) = sleep(seconds)
end

# Outside the fiber tests: loading, and the behaviour without a terminal.
class TestDebuggerLoading < Minitest::Test
  include ChildRuby::Assertions

  LIMIT = 30

  # Of the debugger's room, only UringMachine.breakpoint (debugger/breakpoint.rb) comes with the gem.
  def test_require_uring_machine_does_not_load_the_debugger
    program = 'require "uring_machine"; p $LOADED_FEATURES.grep(/uring_machine.debugger/).map { File.basename(_1) }'
    child = run_ruby("-w", "-e", program, limit: LIMIT, merge_err: true)
    assert child.status.success?, child.out
    assert_equal %(["breakpoint.rb"]\n), child.out
  end

  def test_without_a_terminal_breakpoint_prints_the_location_and_goes_on
    program = <<~RUBY
      require "uring_machine/global"
      x = 1
      breakpoint
      puts "went on with \#{x}"
    RUBY
    child = run_ruby("-w", "-e", program, limit: LIMIT) # stdin: /dev/null, no terminal
    assert child.status.success?, child.err
    assert_equal "went on with 1\n", child.out
    assert_match(/breakpoint at -e:3 \(no terminal: going on\)/, child.err)
  end
end
