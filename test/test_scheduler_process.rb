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
      end
    end
    assert_equal 100, results.size
    100.times { |i| assert_equal [true, i % 50], results[i], "child #{i}" }
    waiting = time - spawning
    assert_operator waiting, :<, 10, "100 children of 0.2s were waited one after the other (#{time}s, #{spawning}s spawning)"
  end

  def test_fork_in_a_fiber
    skip "fork is not available" unless Process.respond_to?(:fork)

    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          pid = fork do
            r.close
            sleep 0.01 # the child's fiber uses the (inherited) scheduler: it must work there
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
end
