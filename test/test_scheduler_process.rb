# frozen_string_literal: true

require_relative "scheduler_helper"
require "open3"

class TestSchedulerProcess < SchedulerTest
  def test_process_wait_and_wait2
    got = with_scheduler do
      got = {}
      schedule_fiber do
        pid = Process.spawn("sh", "-c", "sleep 0.05; exit 3")
        got[:wait] = Process.wait(pid) == pid
        got[:status] = $?
        pid2 = Process.spawn("sh", "-c", "exit 4")
        got[:wait2] = Process.wait2(pid2)
        got[:pid2] = pid2
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert got[:wait]
    assert_equal 3, got[:status].exitstatus
    assert_equal got[:pid2], got[:wait2][0]
    assert_equal 4, got[:wait2][1].exitstatus
  end

  def test_other_fibers_run_while_waiting_for_a_child
    got = with_scheduler do
      got = { ticks: 0 }
      schedule_fiber do
        pid = Process.spawn("sleep", "0.2")
        got[:status] = Process.wait2(pid)[1]
      end
      schedule_fiber do
        5.times do
          sleep 0.01
          got[:ticks] += 1
        end
        got[:ticks_done_before_child] = got[:status].nil?
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert got[:status].success?
    assert_equal 5, got[:ticks]
    assert got[:ticks_done_before_child], "Process.wait blocked the other fibers"
  end

  def test_spawn_with_a_pipe_and_wait
    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          pid = Process.spawn("sh", "-c", "sleep 0.02; echo from child", out: w)
          w.close
          got[:output] = r.read
          got[:status] = Process.wait2(pid)[1]
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal "from child\n", got[:output]
    assert got[:status].success?
  end

  def test_process_wait_for_any_child
    got = with_scheduler do
      got = {}
      schedule_fiber do
        got[:pid] = Process.spawn("sh", "-c", "exit 5")
        got[:waited] = Process.wait
        got[:status] = $?.exitstatus
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal got[:pid], got[:waited]
    assert_equal 5, got[:status]
  end

  def test_waits_for_any_child_and_process_groups_in_the_ring_without_threads
    got = with_scheduler do
      got = { threads: Thread.list.size }
      schedule_fiber do
        any = Process.spawn("sh", "-c", "exit 11")
        got[:any] = [any, Process.wait(-1), $?.exitstatus]
        own_group = Process.spawn("sh", "-c", "exit 12")
        got[:own_group] = [own_group, Process.wait(0), $?.exitstatus]
        leader = Process.spawn("sh", "-c", "exit 13", pgroup: true)
        got[:other_group] = [leader, Process.wait(-leader), $?.exitstatus]
        got[:threads_after] = Thread.list.size
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal 11, got[:any][2]
    assert_equal got[:any][0], got[:any][1]
    assert_equal [got[:own_group][0], got[:own_group][0], 12], got[:own_group]
    assert_equal [got[:other_group][0], got[:other_group][0], 13], got[:other_group]
    assert_equal got[:threads], got[:threads_after], "no worker thread waited"
  end

  def test_wait_for_a_stopped_child_with_wuntraced
    got = with_scheduler do
      got = {}
      schedule_fiber do
        pid = Process.spawn("sleep", "1000")
        Process.kill(:STOP, pid)
        got[:stopped] = Process.wait2(pid, Process::WUNTRACED)[1]
        Process.kill(:KILL, pid)
        got[:killed] = Process.wait2(pid)[1]
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert got[:stopped].stopped?
    assert_equal Signal.list["STOP"], got[:stopped].stopsig
    assert_equal Signal.list["KILL"], got[:killed].termsig
  end

  def test_process_wait_hook_with_wnohang_and_bad_flags
    got = with_scheduler do |scheduler|
      pid = Process.spawn("sleep", "1000")
      got = { running: scheduler.process_wait(pid, Process::WNOHANG) }
      got[:bad_flags] = assert_raises(Errno::EINVAL) { scheduler.process_wait(pid, 1 << 20) }
      Process.kill(:KILL, pid)
      schedule_fiber { got[:status] = scheduler.process_wait(pid, 0) }
      Fiber.set_scheduler(nil)
      got
    end
    assert_nil got[:running]
    assert_equal Signal.list["KILL"], got[:status].termsig
  end

  def test_wait_for_a_pid_that_no_longer_exists
    got = with_scheduler do
      pid = Process.spawn("true")
      Process.wait(pid)
      error = nil
      schedule_fiber { error = assert_raises(Errno::ECHILD) { Process.wait(pid) } }
      Fiber.set_scheduler(nil)
      error
    end
    assert_kind_of Errno::ECHILD, got
  end

  def test_wait_with_wnohang_returns_nil_for_a_running_child
    got = with_scheduler do
      got = {}
      schedule_fiber do
        pid = Process.spawn("sleep", "5")
        got[:nohang] = Process.wait(pid, Process::WNOHANG)
        Process.kill(:TERM, pid)
        got[:status] = Process.wait2(pid)[1]
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_nil got[:nohang]
    assert got[:status].signaled?
    assert_equal Signal.list["TERM"], got[:status].termsig
  end

  def test_wait_for_a_pid_that_is_not_a_child
    error = with_scheduler do
      error = nil
      schedule_fiber { error = assert_raises(Errno::ECHILD) { Process.wait(1) } }
      Fiber.set_scheduler(nil)
      error
    end
    assert_kind_of Errno::ECHILD, error
  end

  def test_system_and_backticks
    got = with_scheduler do
      got = {}
      schedule_fiber do
        got[:true] = system("true")
        got[:false] = system("sh", "-c", "exit 2")
        got[:false_status] = $?.exitstatus
        got[:missing] = system("/nonexistent/command/for/um/tests")
        got[:backticks] = `echo hi; echo there`
        got[:backticks_status] = $?.success?
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal true, got[:true]
    assert_equal false, got[:false]
    assert_equal 2, got[:false_status]
    assert_nil got[:missing]
    assert_equal "hi\nthere\n", got[:backticks]
    assert got[:backticks_status]
  end

  def test_open3_capture3
    got = with_scheduler do
      got = nil
      schedule_fiber do
        got = Open3.capture3("sh", "-c", "cat; echo err >&2; exit 6", stdin_data: "in" * 50_000)
      end
      Fiber.set_scheduler(nil)
      got
    end
    out, err, status = got
    assert_equal "in" * 50_000, out
    assert_equal "err\n", err
    assert_equal 6, status.exitstatus
  end

  def test_process_detach_value_from_a_fiber
    got = with_scheduler do
      got = nil
      schedule_fiber do
        pid = Process.spawn("sh", "-c", "exit 9")
        got = Process.detach(pid).value
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal 9, got.exitstatus
  end

  def test_a_hundred_children_waited_concurrently
    results = {}
    spawning = 0.0 # spawn itself holds the thread (fork is slow in a big process): not waiting
    GC.start
    threads = Thread.list.size
    threads_during = nil
    time = elapsed do
      with_scheduler(limit: 60) do
        100.times do |i|
          schedule_fiber do
            pid = nil
            spawning += elapsed { pid = Process.spawn("sh", "-c", "sleep 0.2; exit #{i % 50}") }
            waited, status = Process.wait2(pid)
            results[i] = [waited == pid, status.exitstatus]
          end
        end
        threads_during = Thread.list.size # every fiber waits for its child now
      end
    end
    assert_equal 100, results.size
    100.times { |i| assert_equal [true, i % 50], results[i], "child #{i}" }
    waiting = time - spawning
    assert_operator waiting, :<, 10, "100 children of 0.2s were waited one after the other (#{time}s, #{spawning}s spawning)"
    assert_equal threads + 1, threads_during, "only the test's scheduler thread: no waiter threads"
    assert_equal threads, Thread.list.size
  end

  def test_fork_in_a_fiber
    skip "fork is not available" unless Process.respond_to?(:fork)

    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          pid = fork do
            r.close
            sleep 0.01 # the child starts without a scheduler: this just sleeps
            w.write("child #{Process.pid}")
            w.close
            exit 7
          end
          w.close
          got[:pid] = pid
          got[:output] = r.read
          got[:status] = Process.wait2(pid)[1]
        ensure
          Process.kill(:KILL, pid) if pid && !got[:status] rescue nil
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal "child #{got[:pid]}", got[:output]
    assert_equal 7, got[:status].exitstatus
  end

  def test_closing_a_dup_of_a_popen_io_does_not_raise_echild
    # Each IO of the pair waits for the child when closed; the second finds it reaped, and
    # IO#close ignores that, as without a scheduler.
    output = in_scheduled_fiber do
      io = IO.popen(["echo", "hi"])
      copy = io.dup
      line = copy.gets
      io.close
      copy.close
      line
    end
    assert_equal "hi\n", output
  end

  def test_process_wait_of_a_reaped_child_raises_echild
    errors = in_scheduled_fiber do
      pid = Process.spawn("true")
      Process.wait(pid)
      [Process.wait(pid)]
    rescue Errno::ECHILD => e
      [e.class]
    end
    assert_equal [Errno::ECHILD], errors
  end

  def test_writing_to_a_popen_io_after_close_read
    skip "CRuby 4.0 raises IOError here under any scheduler with fiber_interrupt (before any hook)" if RUBY_VERSION >= "4.0"

    output = in_scheduled_fiber do
      io = IO.popen(["cat"], "r+")
      io.close_read
      io.write("to cat")
      io.close
      :written
    end
    assert_equal :written, output
  end
end
