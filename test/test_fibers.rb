# frozen_string_literal: true

require_relative "test_helper"

class TestFibers < MachineTest
  def test_spin_returns_a_scheduled_non_blocking_fiber
    ran = false
    fiber = machine.spin { ran = true }
    assert_kind_of Fiber, fiber
    refute ran, "spin schedules; the fiber starts at the next switch"
    machine.snooze
    assert ran
  end

  def test_spin_passes_arguments_and_join_returns_values
    a = machine.spin(1, 2) { |x, y| x + y }
    b = machine.spin { :b }
    assert_equal 3, machine.join(a)
    assert_equal [3, :b], machine.join(a, b)
  end

  def test_join_reraises_the_fibers_exception
    machine.report_on_exception = false
    fiber = machine.spin { raise ArgumentError, "boom" }
    error = assert_raises(ArgumentError) { machine.join(fiber) }
    assert_equal "boom", error.message
  end

  def test_unjoined_failure_is_raised_in_the_parent_at_its_next_switch
    machine.spin { raise "lost?" }
    error = assert_raises(RuntimeError) { machine.snooze }
    assert_equal "lost?", error.message
    machine.snooze # raised once
  end

  def test_unjoined_failure_interrupts_a_waiting_parent
    r, w = IO.pipe
    parent = machine.spin do
      machine.spin { raise ArgumentError, "child failed" }
      machine.read(r, +"", 10)
    rescue ArgumentError => e
      "parent got #{e.message}"
    end
    assert_equal "parent got child failed", machine.join(parent)
  ensure
    r&.close
    w&.close
  end

  def test_a_spun_fiber_is_stopped_when_its_parent_finishes_first
    cleaned = []
    parent = machine.spin do
      machine.spin do
        machine.sleep(30)
      ensure
        cleaned << :child
      end
      machine.snooze # the child starts, and waits
      :parent_value
    end
    assert_equal :parent_value, machine.join(parent)
    assert_equal [:child], cleaned, "the child's ensure ran before its parent finished"
  end

  def test_failure_with_no_living_ancestor_is_reported_on_stderr
    # spun from a plain fiber that has finished since: nobody is left to raise it in
    Fiber.new { machine.spin { raise "lost?" } }.resume
    _, err = capture_io { machine.snooze }
    assert_match(/terminated with exception.*lost\?/m, err)
  end

  def test_fiber_yield_in_a_spun_fiber_suspends_it
    fiber = machine.spin { "resumed with #{Fiber.yield(:dropped)}" }
    machine.snooze
    assert fiber.alive?
    machine.schedule(fiber, :hi)
    assert_equal "resumed with hi", machine.join(fiber)
  end

  def test_machine_of_names_the_machine_of_spun_fibers_only
    fiber = machine.spin { UringMachine.machine_of(Fiber.current) }
    assert_same machine, machine.join(fiber)
    assert_nil UringMachine.machine_of(Fiber.current)
    assert_raises(TypeError) { UringMachine.machine_of(:not_a_fiber) }
  end

  def test_schedule_resumes_a_suspended_fiber_with_a_value
    fiber = machine.spin { machine.suspend }
    machine.snooze
    machine.schedule(fiber, :hello)
    assert_equal :hello, machine.join(fiber)
  end

  def test_schedule_with_an_exception_raises_it_in_the_fiber
    fiber = machine.spin do
      machine.suspend
    rescue RuntimeError => e
      "rescued #{e.message}"
    end
    machine.snooze
    machine.schedule(fiber, RuntimeError.new("stop"))
    assert_equal "rescued stop", machine.join(fiber)
  end

  def test_schedule_with_an_exception_interrupts_a_pending_read
    r, w = IO.pipe
    buffer = +"old"
    fiber = machine.spin do
      machine.read(r, buffer, 100)
    rescue IOError => e
      e.message
    end
    machine.snooze
    machine.schedule(fiber, IOError.new("interrupted"))
    assert_equal "interrupted", machine.join(fiber)
    w << "late"
    assert_equal "old", buffer, "a cancelled read must not write into the buffer"
    assert_equal "late", r.read_nonblock(10), "the cancelled read consumed nothing"
  ensure
    [r, w].each(&:close)
  end

  def test_snooze_interleaves_fibers
    log = []
    a = machine.spin { 3.times { |i| log << [:a, i]; machine.snooze } }
    b = machine.spin { 3.times { |i| log << [:b, i]; machine.snooze } }
    machine.join(a, b)
    assert_equal [[:a, 0], [:b, 0], [:a, 1], [:b, 1], [:a, 2], [:b, 2]], log
  end

  def test_schedule_rejects_non_fibers
    assert_raises(TypeError) { machine.schedule(:nope) }
    assert_raises(ArgumentError) { machine.schedule }
  end

  def test_join_of_itself_is_an_error
    assert_raises(ArgumentError) { in_fiber { machine.join(Fiber.current) } }
  end

  def test_thread_local_machine
    assert_same UringMachine.machine, UringMachine.machine
    @fds_before = open_fd_count # the main thread's machine stays: only the other one counts
    other = Thread.new { UringMachine.machine }.value
    refute_same UringMachine.machine, other
  end

  def test_more_waiting_ops_than_ring_entries
    small = UringMachine::Machine.new(entries: 8)
    pipes = Array.new(100) { IO.pipe }
    readers = pipes.map { |r, _| small.spin { buffer = +""; small.read(r, buffer, 10); buffer } }
    small.snooze
    pipes.each_with_index { |(_, w), i| w << i.to_s }
    assert_equal Array.new(100, &:to_s), small.join(*readers)
  ensure
    pipes&.flatten&.each(&:close)
  end

  def test_entries_option
    assert_kind_of UringMachine::Machine, UringMachine::Machine.new(entries: 64)
    assert_raises(ArgumentError) { UringMachine::Machine.new(entries: 0) }
    assert_raises(ArgumentError) { UringMachine::Machine.new(bogus: 1) }
  end
end
