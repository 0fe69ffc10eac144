# frozen_string_literal: true

require_relative "scheduler_helper"

# UringMachine::Process: processes held through a pidfd, waited with WAITID in the ring.
class TestProcessHandle < SchedulerTest
  # Waits until +child+ has exited, without reaping it: its pidfd turns readable.
  def wait_for_exit_unreaped(child)
    IO.for_fd(child.fileno, autoclose: false).wait_readable
  end

  def test_wait_returns_the_exit_status_and_sets_last_status
    got = in_scheduled_fiber do
      child = UringMachine::Process.spawn("sh", "-c", "exit 7")
      status = child.wait
      { child: child, status: status, last: $?, again: child.wait, alive: child.alive? }
    end
    status = got[:status]
    assert_kind_of Process::Status, status
    assert_equal got[:child].pid, status.pid
    assert_equal 7, status.exitstatus
    assert_equal status, got[:last]
    assert_same status, got[:again], "a second wait returns the same status"
    assert_same status, got[:child].status
    refute got[:alive]
  ensure
    got&.fetch(:child)&.close
  end

  def test_kill_delivers_signals_by_name_or_number
    got = in_scheduled_fiber do
      children = Array.new(3) { UringMachine::Process.spawn("sleep", "1000") }
      alive = children.map(&:alive?)
      sent = [children[0].kill(:TERM), children[1].kill("SIGINT"), children[2].kill(Signal.list["KILL"])]
      { alive: alive, sent: sent, statuses: children.map(&:wait) }.tap { children.each(&:close) }
    end
    assert_equal [true] * 3, got[:alive]
    assert_equal [true] * 3, got[:sent]
    assert got[:statuses].all?(&:signaled?)
    assert_equal %w[TERM INT KILL].map { |s| Signal.list[s] }, got[:statuses].map(&:termsig)
  end

  def test_kill_on_an_exited_but_unreaped_child_changes_nothing
    got = in_scheduled_fiber do
      child = UringMachine::Process.spawn("sh", "-c", "exit 3")
      wait_for_exit_unreaped(child)
      got = { alive: child.alive?, killed: child.kill(:KILL), status: child.wait }
      got[:after_reap] = assert_raises(Errno::ESRCH) { child.kill(:TERM) }
      child.close
      got
    end
    refute got[:alive], "an exited child is not alive, even unreaped"
    assert got[:killed]
    assert_equal 3, got[:status].exitstatus, "the signal reached no other process and changed nothing"
    refute got[:status].signaled?
  end

  def test_kill_zero_checks_existence_and_bad_signals_raise
    in_scheduled_fiber do
      child = UringMachine::Process.spawn("sleep", "1000")
      assert child.kill(0)
      assert_raises(ArgumentError) { child.kill(:NO_SUCH_SIGNAL) }
      assert_raises(ArgumentError) { child.kill(-9) }
      assert_raises(TypeError) { child.kill(nil) }
      assert_raises(TypeError) { child.kill(1.5) }
      assert_raises(Errno::EINVAL) { child.kill(100_000) }
      assert child.alive?, "bad signals reached nobody"
      child.kill(:KILL)
      assert_equal Signal.list["KILL"], child.wait.termsig
      child.close
    end
  end

  def test_two_hundred_children_are_waited_concurrently_without_threads
    ensure_fd_limit(1024)
    GC.start
    children = 200
    spawning = 0.0 # spawn holds the thread (fork is slow in a big process): not waiting
    threads = { before: Thread.list.size }
    statuses = []
    time = elapsed do
      with_scheduler(limit: 120) do
        children.times do |i|
          schedule_fiber do
            child = nil
            spawning += elapsed { child = UringMachine::Process.spawn("sh", "-c", "sleep 0.5; exit #{i % 100}") }
            statuses << [i, child.wait]
            child.close
          end
        end
        threads[:during] = Thread.list.size # every fiber waits in the ring now
      end
    end
    threads[:after] = Thread.list.size
    assert_equal children, statuses.size
    statuses.each { |i, status| assert_equal i % 100, status.exitstatus, "child #{i}" }
    assert_equal threads[:before] + 1, threads[:during], "only the test's scheduler thread was added: #{threads}"
    assert_equal threads[:before], threads[:after]
    waiting = time - spawning
    assert_operator waiting, :<, 20,
                    "#{children} children of 0.5s were not waited concurrently (#{time.round(2)}s, #{spawning.round(2)}s spawning)"
  end

  def test_waiting_for_a_foreign_or_already_reaped_process_raises_echild
    got = in_scheduled_fiber do
      foreign = UringMachine::Process.open(Process.ppid)
      got = { foreign: assert_raises(Errno::ECHILD) { foreign.wait } }
      foreign.close
      child = UringMachine::Process.spawn("true")
      Process.wait(child.pid) # reaped elsewhere: the handle cannot reap it again
      got[:reaped] = assert_raises(Errno::ECHILD) { child.wait }
      got[:kill_reaped] = assert_raises(Errno::ESRCH) { child.kill(:TERM) }
      got[:reopen] = assert_raises(Errno::ESRCH) { UringMachine::Process.open(child.pid) }
      child.close
      got
    end
    assert_kind_of Errno::ECHILD, got[:foreign]
    assert_kind_of Errno::ECHILD, got[:reaped]
  end

  def test_open_with_bad_arguments
    assert_raises(ArgumentError) { UringMachine::Process.open(0) }
    assert_raises(ArgumentError) { UringMachine::Process.open(-1) }
    assert_raises(ArgumentError) { UringMachine::Process.open(2**40) }
    assert_raises(TypeError) { UringMachine::Process.open("1") }
    assert_raises(TypeError) { UringMachine::Process.open(nil) }
    assert_raises(NoMethodError, TypeError) { UringMachine::Process.new }
  end

  def open_pidfds
    Dir.children("/proc/self/fd").count { |fd| File.readlink("/proc/self/fd/#{fd}").include?("pidfd") rescue false }
  end

  def test_close_is_idempotent_frees_the_pidfd_and_leaves_the_process_alone
    before = open_pidfds
    pids = Array.new(50) do
      child = UringMachine::Process.spawn("sleep", "1000")
      fd = child.fileno
      child.close
      refute File.exist?("/proc/self/fd/#{fd}"), "the pidfd is closed"
      child.close
      child.close
      assert child.closed?
      assert_raises(IOError) { child.wait }
      assert_raises(IOError) { child.kill(:TERM) }
      assert_raises(IOError) { child.alive? }
      assert_raises(IOError) { child.fileno }
      assert_match(/closed/, child.inspect)
      child.pid
    end
    assert_equal before, open_pidfds, "pidfds leaked"
    pids.each { |pid| Process.kill(:KILL, pid) }
    statuses = pids.map { |pid| Process.wait2(pid)[1] }
    assert statuses.all? { |s| s.termsig == Signal.list["KILL"] }, "the processes outlived their handles"
  end

  def test_closing_the_handle_wakes_its_waiter_with_ioerror
    got = with_scheduler do
      child = UringMachine::Process.spawn("sleep", "1000")
      error = nil
      schedule_fiber { error = assert_raises(IOError) { child.wait } }
      child.close # the waiter is parked in the ring by now
      Fiber.set_scheduler(nil)
      Process.kill(:KILL, child.pid)
      [error, Process.wait2(child.pid)[1]]
    end
    assert_match(/stream closed/, got[0].message)
    assert_equal Signal.list["KILL"], got[1].termsig
  end

  def test_process_open_on_the_scheduler
    got = with_scheduler do |scheduler|
      pid = Process.spawn("sh", "-c", "exit 4")
      child = scheduler.process_open(pid)
      status = nil
      schedule_fiber { status = child.wait }
      Fiber.set_scheduler(nil)
      child.close
      [child, status]
    end
    assert_kind_of UringMachine::Process, got[0]
    assert_equal 4, got[1].exitstatus
  end

  def test_wait_on_a_thread_without_a_machine_creates_none
    got = Thread.new do
      child = UringMachine::Process.spawn("sh", "-c", "sleep 0.05; exit 6")
      status = child.wait
      child.close
      [status, Thread.current.thread_variable_get(:uring_machine)]
    end.value
    assert_equal 6, got[0].exitstatus
    assert_nil got[1], "a plain thread waited through the pidfd, without a ring"
  end

  def test_spawn_passes_process_spawn_options
    got = in_scheduled_fiber do
      with_pipe do |r, w|
        child = UringMachine::Process.spawn({ "UM_TEST_VALUE" => "42" }, "sh", "-c", "echo $UM_TEST_VALUE", out: w)
        w.close
        [r.read, child.wait.success?].tap { child.close }
      end
    end
    assert_equal ["42\n", true], got
    assert_raises(Errno::ENOENT) { UringMachine::Process.spawn("/nonexistent/um/command") }
  end
end
