# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"
require "io/wait"

# Signals end a program under the scheduler as they end a plain Ruby program: the signal
# exception reaches the main fiber, the other fibers are stopped (their ensure blocks run), and
# the process dies by the signal. Each case runs a child Ruby and sends it a real signal.
class TestSignals < Minitest::Test
  # Upper bound for a child to get ready, and to exit once signalled (a bound, not a race:
  # plain Ruby takes about 10 ms).
  LIMIT = 10

  PRELUDE = <<~RUBY
    require "uring_machine"
    $stdout.sync = true
    def ensure_line(name)
      yield
    ensure
      puts "ensure \#{name}"
    end
  RUBY

  # Fibers blocked on pipe reads and a sleep; the last line runs when close has started them
  # all, from inside Fiber.set_scheduler(nil).
  IN_CLOSE = <<~RUBY
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    r, _w = IO.pipe
    3.times { |i| Fiber.schedule { ensure_line("read \#{i}") { r.read(1) } } }
    Fiber.schedule { ensure_line("sleep") { sleep 60 } }
    go = Thread::Queue.new
    Fiber.schedule { go.pop; puts "ready" }
    go << true
    ensure_line("main") { Fiber.set_scheduler(nil) }
    puts "not reached"
  RUBY

  CLOSE_LINES = ["ensure read 0", "ensure read 1", "ensure read 2", "ensure sleep", "ensure main"].freeze

  # Runs +script+ in a child Ruby; once it printed "ready", sends +signal+ (unless nil) and
  # +input+ on its stdin. Returns [status, lines printed after "ready", stderr, seconds from
  # the signal to the exit].
  def run_child(script, signal: nil, input: nil)
    out_r, out_w = IO.pipe
    err_r, err_w = IO.pipe
    in_r, in_w = IO.pipe
    pid = Process.spawn(*ChildRuby.command("-w", "-e", PRELUDE + script), in: in_r, out: out_w, err: err_w)
    [out_w, err_w, in_r].each(&:close)
    errors = Thread.new { err_r.read }
    ready = out_r.wait_readable(LIMIT) && out_r.gets
    unless ready == "ready\n"
      Process.kill("KILL", pid)
      Process.wait(pid)
      flunk "child did not get ready: #{ready.inspect}\n#{errors.value}"
    end
    start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    Process.kill(signal, pid) if signal
    in_w.puts(input) if input
    status, killed = ChildRuby.wait(pid, LIMIT)
    flunk "child did not exit within #{LIMIT}s of #{signal || input}: #{out_r.read.inspect}\n#{errors.value}" if killed
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - start
    report_time(signal || input, took)
    [status, out_r.read.lines(chomp: true), errors.value, took]
  ensure
    [out_r, err_r, in_w].each { |io| io&.close unless io&.closed? }
  end

  def report_time(what, seconds)
    $stderr.puts format("  %-40s %s: %.1f ms", name, what, seconds * 1000) if ENV["UM_SIGNAL_TIMES"]
  end

  def assert_died_by(signal, status, stderr)
    assert status.signaled?, "expected death by SIG#{signal}, got #{status.inspect}\n#{stderr}"
    assert_equal Signal.list.fetch(signal), status.termsig, stderr
  end

  def assert_lines(expected, lines, stderr)
    assert_equal expected.sort, lines.sort, stderr
  end

  def test_int_while_closing_stops_the_fibers
    status, lines, stderr = run_child(IN_CLOSE, signal: "INT")
    assert_died_by "INT", status, stderr
    assert_lines CLOSE_LINES, lines, stderr
  end

  def test_term_while_closing_stops_the_fibers
    status, lines, stderr = run_child(IN_CLOSE, signal: "TERM")
    assert_died_by "TERM", status, stderr
    assert_lines CLOSE_LINES, lines, stderr
  end

  # Ruby's default QUIT handler raises SignalException (SIGQUIT), like TERM: plain Ruby runs
  # its ensure blocks and dies by SIGQUIT.
  def test_quit_while_closing_stops_the_fibers
    status, lines, stderr = run_child(IN_CLOSE, signal: "QUIT")
    assert_died_by "QUIT", status, stderr
    assert_lines CLOSE_LINES, lines, stderr
  end

  # The root fiber is blocking: its read waits in Ruby itself, and the Interrupt is raised
  # there; closing the scheduler at exit then stops the fibers.
  def test_int_while_the_root_fiber_reads
    script = <<~RUBY
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      2.times { |i| Fiber.schedule { ensure_line("sleep \#{i}") { sleep 60 } } }
      r, _w = IO.pipe
      ensure_line("main") do
        puts "ready"
        r.read(1)
      end
    RUBY
    status, lines, stderr = run_child(script, signal: "INT")
    assert_died_by "INT", status, stderr
    assert_lines ["ensure sleep 0", "ensure sleep 1", "ensure main"], lines, stderr
  end

  # Raised while a fiber runs Ruby code (not in a wait): that fiber ends, the signal goes on
  # to the main fiber, and the others are stopped.
  def test_int_while_a_fiber_computes
    script = <<~RUBY
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule { ensure_line("sleep") { sleep 60 } }
      go = Thread::Queue.new
      Fiber.schedule do
        ensure_line("compute") do
          go.pop
          puts "ready"
          n = 0
          loop { n += 1 }
        end
      end
      go << true
      ensure_line("main") { Fiber.set_scheduler(nil) }
    RUBY
    status, lines, stderr = run_child(script, signal: "INT")
    assert_died_by "INT", status, stderr
    assert_lines ["ensure compute", "ensure sleep", "ensure main"], lines, stderr
  end

  # A user's trap handler still runs, and nothing else happens: the fibers go on.
  def test_user_trap_runs_and_fibers_go_on
    script = <<~RUBY
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      r, w = IO.pipe
      trap("INT") { w.write("x") } # no puts: the signal may come while $stdout is locked
      Fiber.schedule { ensure_line("reader got \#{r.read(1)}") { } }
      Fiber.schedule { ensure_line("sleep") { sleep 0.2 } }
      go = Thread::Queue.new
      Fiber.schedule { go.pop; puts "ready" }
      go << true
      Fiber.set_scheduler(nil)
      puts "finished"
    RUBY
    status, lines, stderr = run_child(script, signal: "INT")
    assert status.success?, "#{status.inspect}\n#{stderr}"
    assert_equal ["ensure reader got x", "ensure sleep", "finished"], lines, stderr
  end

  # trap + emit_signal_exception: the handler decides, the main fiber gets the exception.
  def test_trap_handler_emits_to_the_main_fiber
    script = <<~RUBY
      trap("INT") do
        $trapped = true
        UringMachine.emit_signal_exception(Interrupt.new)
      end
      at_exit { puts "trapped: \#{$trapped}" }
    RUBY
    status, lines, stderr = run_child(script + IN_CLOSE, signal: "INT")
    assert_died_by "INT", status, stderr
    assert_lines ["trapped: true", *CLOSE_LINES], lines, stderr
  end

  def test_emit_from_another_fiber
    script = <<~RUBY
      Fiber.schedule do
        $stdin.gets
        UringMachine.emit_signal_exception(SignalException.new("TERM"))
        puts "emitted"
      end
    RUBY
    status, lines, stderr = run_child(IN_CLOSE.sub("go << true", "go << true\n#{script}"), input: "go")
    assert_died_by "TERM", status, stderr
    assert_lines ["emitted", *CLOSE_LINES], lines, stderr
  end

  def test_emit_from_another_thread_while_closing
    script = <<~RUBY
      Thread.new do
        $stdin.gets
        UringMachine.emit_signal_exception(Interrupt)
      end
    RUBY
    status, lines, stderr = run_child(script + IN_CLOSE, input: "go")
    assert_died_by "INT", status, stderr
    assert_lines CLOSE_LINES, lines, stderr
  end

  def test_emit_from_another_thread_while_the_root_fiber_reads
    script = <<~RUBY
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule { ensure_line("sleep") { sleep 60 } }
      Thread.new do
        $stdin.gets
        UringMachine.emit_signal_exception(SignalException.new("TERM"))
      end
      r, _w = IO.pipe
      ensure_line("main") do
        puts "ready"
        r.read(1)
      end
    RUBY
    status, lines, stderr = run_child(script, input: "go")
    assert_died_by "TERM", status, stderr
    assert_lines ["ensure sleep", "ensure main"], lines, stderr
  end

  # The Machine API, no scheduler: the fiber waiting on the ring when INT arrives goes on
  # waiting, the Interrupt is raised in the root fiber (here waiting in join).
  def test_machine_api_signal_reaches_the_root_fiber
    script = <<~RUBY
      m = UringMachine.machine
      r, _w = IO.pipe
      reader = m.spin { m.read(r, +"", 10); puts "reader woke" }
      m.spin { m.sleep(0.01); puts "ready"; m.read(r, +"", 10) }
      begin
        m.join(reader)
      rescue Interrupt => e
        puts "root got \#{e.class}"
        puts "reader alive: \#{reader.alive?}"
        raise
      end
    RUBY
    status, lines, stderr = run_child(script, signal: "INT")
    assert_died_by "INT", status, stderr
    assert_equal ["root got Interrupt", "reader alive: true"], lines, stderr
  end
end

# The rules behind the cases above, in this process.
class TestSignalRules < Minitest::Test
  def test_emit_to_the_current_fiber_raises_at_once
    assert_raises(Interrupt) { UringMachine.emit_signal_exception(Interrupt.new) }
    error = assert_raises(SignalException) do
      UringMachine.emit_signal_exception(SignalException.new("TERM"), Fiber.current)
    end
    assert_equal "SIGTERM", error.message
  end

  def test_emit_needs_an_exception
    assert_raises(TypeError) { UringMachine.emit_signal_exception("INT") }
    assert_raises(TypeError) { UringMachine.emit_signal_exception(Interrupt.new, :main) }
    assert_raises(ArgumentError) { UringMachine.emit_signal_exception }
    assert_raises(FrozenError) { UringMachine.emit_signal_exception(Interrupt.new.freeze) }
  end

  def test_emit_to_a_waiting_fiber_of_this_thread
    m = UringMachine::Machine.new
    r, w = IO.pipe
    got = nil
    reader = m.spin do
      m.read(r, +"", 10)
    rescue Interrupt => e
      got = e
    end
    m.snooze # the reader now waits in its read
    UringMachine.emit_signal_exception(Interrupt.new("for the reader"), reader)
    m.join(reader)
    assert_equal "for the reader", got.message
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_emit_to_a_fiber_that_waits_nowhere
    assert_raises(ArgumentError) { UringMachine.emit_signal_exception(Interrupt.new, Fiber.new {}) }
  end

  # close while a signal exception propagates: the fibers are stopped, not waited for, and
  # the stop is no failure.
  def test_close_while_a_signal_propagates_stops_the_fibers
    [Interrupt, SystemExit].each do |klass|
      stopped = Thread::Queue.new
      r, w = IO.pipe
      thread = Thread.new do
        Thread.current.report_on_exception = false
        Fiber.set_scheduler(UringMachine::Scheduler.new)
        Fiber.schedule do
          r.read(1)
        rescue UringMachine::Stop => e
          stopped << e
        end
        Fiber.schedule do
          sleep 60
        ensure
          stopped << :sleeper
        end
        begin
          raise klass
        ensure
          Fiber.set_scheduler(nil)
        end
      end
      assert_raises(klass) { assert thread.join(10), "close waited for the fibers" }
      outcomes = [stopped.pop, stopped.pop]
      assert_equal [:sleeper], outcomes.grep(Symbol)
      assert_equal 1, outcomes.grep(UringMachine::Stop).size, outcomes.inspect
    ensure
      [r, w].each { |io| io&.close }
    end
  end

  def test_close_without_a_signal_still_waits
    thread = Thread.new do
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      done = []
      Fiber.schedule { sleep 0.05; done << 1 }
      Fiber.set_scheduler(nil)
      done
    end
    assert_equal [1], thread.value
  end

  def test_stop_is_an_exception_but_no_standard_error
    assert_operator UringMachine::Stop, :<, Exception
    refute_operator UringMachine::Stop, :<, StandardError
  end
end
