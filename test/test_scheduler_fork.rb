# frozen_string_literal: true

require_relative "scheduler_helper"

# Forking from scheduled fibers: the child never touches the parent's ring, starts without a
# scheduler (or with a fresh one it asked for), and the parent's fibers go on undisturbed.
# Children end with exit! (after Fiber.set_scheduler(nil) ran their fibers), so that nothing of
# the parent's test run (at_exit hooks) runs in them.
class TestSchedulerFork < SchedulerTest
  def setup
    super
    skip "fork is not available" unless Process.respond_to?(:fork)
  end

  # In the child: runs the block, sends its value (or its error) to the parent through +io+,
  # and exits.
  def report_and_exit(io)
    value = begin
      yield
    rescue Exception => e # rubocop:disable Lint/RescueException -- reported to the parent
      e
    end
    io.write(Marshal.dump(value))
    io.close
    exit!(0)
  ensure
    exit!(1)
  end

  # In the parent: what the child reported (re-raising its error) and its exit status.
  def child_report(pid, io)
    value = Marshal.load(io.read) # rubocop:disable Security/MarshalLoad -- our own child
    status = Process.wait2(pid)[1]
    raise value if value.is_a?(Exception)

    [value, status]
  end

  # Call in a child with a fresh scheduler: does pipe I/O in scheduled fibers, returns the data.
  def child_pipe_io
    got = nil
    Fiber.schedule { got = pipe_roundtrip("child i/o") }
    Fiber.set_scheduler(nil) # runs the fibers to their end
    got
  end

  def test_fork_while_other_fibers_have_reads_in_flight
    got = with_scheduler do |scheduler|
      r1, w1 = IO.pipe
      r2, w2 = IO.pipe
      report_r, report_w = IO.pipe
      got = {}
      schedule_fiber { got[:read1] = r1.read(5) }
      schedule_fiber { got[:read2] = r2.read(5) }
      parent_machine = scheduler.machine
      got[:in_flight_before] = parent_machine.metrics[:in_flight]
      schedule_fiber do
        pid = fork do
          report_and_exit(report_w) do
            report = {
              scheduler: Fiber.scheduler.inspect,
              fresh_machine: !UringMachine.machine.equal?(parent_machine),
              parent_ring: (parent_machine.sleep(0) rescue $!.class) # rubocop:disable Style/RescueModifier
            }
            Fiber.set_scheduler(UringMachine::Scheduler.new)
            report.merge(io: child_pipe_io)
          end
        end
        report_w.close
        got[:child], got[:status] = child_report(pid, report_r)
        w1.write("hello")
        w2.write("world")
      end
      Fiber.set_scheduler(nil)
      [r1, w1, r2, w2, report_r].each(&:close)
      got
    end
    assert got[:in_flight_before] >= 2, "the reads were in the ring when the child was forked"
    assert_equal "nil", got[:child][:scheduler], "the child starts without a scheduler"
    assert got[:child][:fresh_machine], "UringMachine.machine is a new ring in the child"
    assert_equal RuntimeError, got[:child][:parent_ring], "the parent's machine refuses to run in the child"
    assert_equal "child i/o", got[:child][:io]
    assert got[:status].success?, got[:status].inspect
    assert_equal "hello", got[:read1]
    assert_equal "world", got[:read2]
  end

  def test_process_fork_without_a_block_and_io_popen_dash
    got = with_scheduler do
      got = {}
      schedule_fiber do
        report_r, report_w = IO.pipe
        pid = Process.fork
        report_and_exit(report_w) { [Fiber.scheduler.inspect, Process.pid] } if pid.nil?
        report_w.close
        got[:fork] = child_report(pid, report_r)
        report_r.close
        IO.popen("-") do |child|
          if child
            got[:popen] = child.read
          else
            $stdout.write("popen child #{Process.pid}, scheduler #{Fiber.scheduler.inspect}")
            $stdout.flush
            exit!(0)
          end
        end
        got[:popen_status] = $? # IO.popen's block waited for the child through process_wait
      end
      Fiber.set_scheduler(nil)
      got
    end
    (scheduler, child_pid), status = got[:fork]
    assert_equal "nil", scheduler
    refute_equal Process.pid, child_pid
    assert status.success?
    assert_match(/\Apopen child \d+, scheduler nil\z/, got[:popen])
    assert got[:popen_status].success?
  end

  def test_process_fork_gives_the_child_the_scheduler_it_returns
    subclass = Class.new(UringMachine::Scheduler) do
      def process_fork = UringMachine::Scheduler.new
    end
    got = with_scheduler do
      Fiber.set_scheduler(nil)
      parent = subclass.new
      Fiber.set_scheduler(parent)
      report_r, report_w = IO.pipe
      got = {}
      schedule_fiber do
        pid = fork do
          report_and_exit(report_w) do
            scheduler = Fiber.scheduler
            [scheduler.class, scheduler.machine.equal?(parent.machine), child_pipe_io]
          end
        end
        report_w.close
        got[:child] = child_report(pid, report_r)
      end
      Fiber.set_scheduler(nil)
      report_r.close
      got
    end
    (klass, same_machine, io), status = got[:child]
    assert_equal UringMachine::Scheduler, klass
    refute same_machine
    assert_equal "child i/o", io
    assert status.success?
  end

  def test_after_fork_hooks_run_in_the_child_with_the_parent_scheduler
    calls = []
    hook = UringMachine.after_fork { |parent| calls << [:hook, parent.class, Fiber.scheduler] }
    got = with_scheduler do
      report_r, report_w = IO.pipe
      got = {}
      schedule_fiber do
        pid = fork { report_and_exit(report_w) { calls } }
        report_w.close
        got[:child] = child_report(pid, report_r)
      end
      Fiber.set_scheduler(nil)
      report_r.close
      got
    end
    assert_equal [[:hook, UringMachine::Scheduler, nil]], got[:child][0]
    assert_empty calls, "hooks run only in children"
    assert_same hook, UringMachine.remove_after_fork(hook)
    assert_nil UringMachine.remove_after_fork(hook)
    assert_raises(ArgumentError) { UringMachine.after_fork }
  end

  def test_a_fork_outside_any_scheduler_gets_a_fresh_machine
    parent_machine = UringMachine.machine
    report_r, report_w = IO.pipe
    pid = fork { report_and_exit(report_w) { [UringMachine.machine.equal?(parent_machine), UringMachine.machine.sleep(0.001)] } }
    report_w.close
    (same, slept), status = child_report(pid, report_r)
    report_r.close
    refute same
    assert_equal 0.001, slept
    assert status.success?
  end

  def test_preforking_echo_server_with_four_children
    hook = UringMachine.after_fork { |parent| Fiber.set_scheduler(UringMachine::Scheduler.new) if parent }
    server = TCPServer.new("127.0.0.1", 0)
    port = server.local_address.ip_port
    got = with_scheduler do
      children = []
      replies = []
      4.times do
        schedule_fiber do
          # Each child serves one connection at a time, in a fiber of its own scheduler.
          pid = fork do
            Fiber.schedule do
              client = server.accept
              while (line = client.gets)
                client.write("#{Process.pid} #{line}")
              end
              client.close
            end
            Fiber.set_scheduler(nil)
            exit!(0)
          ensure
            exit!(1)
          end
          children << UringMachine::Process.open(pid)
        end
      end
      greeted = Thread::Queue.new
      go = Thread::Queue.new
      4.times do |i|
        schedule_fiber do
          TCPSocket.open("127.0.0.1", port) do |socket|
            socket.puts("hello #{i}")
            greeted << socket.gets
            go.pop # every connection is open and answered before any goes on
            socket.puts("bye #{i}")
            replies << socket.gets
          end
        end
      end
      schedule_fiber do
        4.times { replies << greeted.pop }
        4.times { go << :go }
      end
      Fiber.set_scheduler(nil)
      [children.map { |c| [c.pid, c.wait].tap { c.close } }, replies]
    end
    children, replies = got
    assert_equal 4, children.size
    assert children.all? { |_, status| status.success? }, children.inspect
    child_pids = children.map(&:first).sort
    greeting_pids = replies.grep(/ hello /).map { |r| r.to_i }.sort
    assert_equal child_pids, greeting_pids, "four children served the four connections at the same time"
    assert_equal 8, replies.size
    4.times { |i| assert(replies.any? { |r| r.end_with?(" bye #{i}\n") }, "reply to bye #{i}") }
  ensure
    UringMachine.remove_after_fork(hook) if hook
    server&.close
  end
end
