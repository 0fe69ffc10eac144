# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"
require "open3"
require "timeout"

# No silent hang: when every fiber of a thread waits for something nothing can bring any more
# (a message, a join, a Queue), UringMachine::DeadlockError is raised in the thread's main
# fiber, naming the fibers and what each waits on. Never while something could still end a
# wait: another thread alive, an op or timer in flight, a signal trap, an endless sleep. Each
# case runs in a child Ruby: the detection needs the thread to be the process's only one.
class TestDeadlock < Minitest::Test
  include ChildRuby::Assertions

  def test_the_main_fiber_gets_the_error_with_the_fiber_tree
    result = run_ruby("-ruring_machine", "-e", <<~RUBY, limit: 30)
      machine = UringMachine.machine
      inbox = machine.spin(name: "inbox") { UringMachine.receive }
      begin
        machine.join(inbox)
      rescue UringMachine::DeadlockError => e
        puts e.message
        inbox << :unstuck # the main fiber can repair it
        p machine.join(inbox)
      end
    RUBY
    assert result.status.success?, result.err
    assert_match(/\Adeadlock: every fiber of #<Thread:\S+ run> waits for something nothing can bring any more/, result.out)
    assert_match(/^#<Fiber:0x\h+ \(root\)>  joining "inbox" -e:2$/, result.out)
    assert_match(/^  "inbox" -e:2  receiving \(mailbox empty\), \d+\.\d s old$/, result.out)
    assert_match(/^:unstuck$/, result.out)
  end

  def test_the_timeout_watchdog_thread_does_not_count_as_another_thread
    result = run_ruby("-ruring_machine", "-e", <<~RUBY, limit: 30)
      machine = UringMachine.machine
      UringMachine.cancel_after(5) { machine.sleep(0) } # starts the watchdog's thread
      raise "no watchdog thread" unless UringMachine::TimeoutWatchdog.__thread__&.alive?
      inbox = machine.spin { UringMachine.receive }
      machine.join(inbox)
    RUBY
    assert_equal 1, result.status.exitstatus, result.err
    assert_match(/deadlock: every fiber .* \(UringMachine::DeadlockError\)$/, result.err)
  end

  def test_fibers_that_join_each_other_under_the_scheduler
    result = run_ruby("-ruring_machine", "-e", <<~RUBY, limit: 30)
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      first = second = nil
      first = UringMachine.spin(name: "first") { sleep 0; second.join }
      second = UringMachine.spin(name: "second") { first.join }
      queue = Thread::Queue.new
      Fiber.schedule { queue.pop }
    RUBY
    assert_equal 1, result.status.exitstatus, result.err
    assert_match(/deadlock: every fiber .* \(UringMachine::DeadlockError\)$/, result.err)
    assert_match(/^  "first" -e:3  joining "second" -e:4, /, result.err)
    assert_match(/^  "second" -e:4  joining "first" -e:3, /, result.err)
    assert_match(/^  fiber 0x\h+ -e:6  blocked on a Thread::Queue, /, result.err)
  end

  def test_no_error_while_another_thread_could_send
    out = talk_to(<<~RUBY) { |stdin| stdin.puts "go" }
      main = Fiber.current
      Thread.new { $stdin.gets; main << :from_thread } # alive, blocked outside any machine
      puts "waiting"
      $stdout.flush
      p UringMachine.receive
    RUBY
    assert_equal "waiting\n:from_thread\n", out
  end

  def test_no_error_while_a_signal_trap_could_send
    out = talk_to(<<~RUBY) { |_stdin, pid| Process.kill(:USR1, pid) }
      main = Fiber.current
      trap("USR1") { main << :from_trap }
      puts "waiting"
      $stdout.flush
      p UringMachine.receive
    RUBY
    assert_equal "waiting\n:from_trap\n", out
  end

  def test_no_error_for_an_endless_sleep_as_in_plain_ruby
    out = talk_to(<<~RUBY, exit_status: nil) { |_stdin, pid| Process.kill(:INT, pid) }
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule { sleep }
      puts "waiting" # from the root fiber, whose writes take no hook; then close's loop waits
      $stdout.flush
    RUBY
    assert_equal "waiting\n", out
  end

  def test_no_error_while_a_timer_runs
    result = run_ruby("-ruring_machine", "-e", <<~RUBY, limit: 30)
      machine = UringMachine.machine
      inbox = machine.spin { UringMachine.receive }
      machine.spin { machine.sleep(0.01); inbox << :late }
      p machine.join(inbox)
    RUBY
    assert result.status.success?, result.err
    assert_equal ":late\n", result.out
  end

  private

  # Runs +code+ in a child Ruby; once it says "waiting", yields its stdin and pid (the block
  # acts on it); returns its stdout. The child must exit with +exit_status+ (nil: end by a signal)
  # and print nothing about a deadlock.
  def talk_to(code, exit_status: 0)
    Open3.popen3(*ChildRuby.command("-ruring_machine", "-e", code)) do |stdin, stdout, stderr, waiter|
      out = +""
      out << Timeout.timeout(30) { stdout.gets }
      assert_equal "waiting\n", out
      yield stdin, waiter.pid
      out << Timeout.timeout(30) { stdout.read }
      status = Timeout.timeout(30) { waiter.value }
      err = stderr.read
      exit_status ? assert_equal(exit_status, status.exitstatus, err) : assert(status.signaled?, err)
      refute_match(/deadlock/i, err)
      out
    ensure
      Process.kill(:KILL, waiter.pid) if waiter.alive?
    end
  end
end
