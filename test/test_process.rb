# frozen_string_literal: true

require_relative "test_helper"

class TestProcess < MachineTest
  def test_waitid_returns_the_exit_status
    pid = Process.spawn("sh", "-c", "exit 7")
    status = machine.waitid(pid)
    assert_kind_of Process::Status, status
    assert_equal pid, status.pid
    assert_equal 7, status.exitstatus
  end

  def test_waitid_reports_a_signal
    pid = Process.spawn("sleep", "1000")
    waiter = machine.spin { machine.waitid(pid) }
    machine.snooze
    Process.kill(:TERM, pid)
    status = machine.join(waiter)
    assert status.signaled?
    assert_equal Signal.list["TERM"], status.termsig
  end

  def test_children_are_waited_concurrently
    pids = Array.new(20) { Process.spawn("sleep", "0.2") }
    statuses = machine.join(*pids.map { |pid| machine.spin { machine.waitid(pid) } })
    assert statuses.all?(&:success?)
    assert_equal pids, statuses.map(&:pid)
  end

  def test_waitid_on_a_non_child
    assert_raises(Errno::ECHILD) { machine.waitid(1) }
    assert_raises(ArgumentError) { machine.waitid(0) }
  end
end
