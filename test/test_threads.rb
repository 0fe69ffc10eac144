# frozen_string_literal: true

require_relative "test_helper"

class TestThreads < MachineTest
  def test_two_threads_each_with_their_own_machine
    results = Array.new(2) do |i|
      Thread.new do
        m = UringMachine.machine
        r, w = IO.pipe
        reader = m.spin { buffer = +""; m.read(r, buffer, 10); buffer }
        m.spin { m.sleep(0.01); m.write(w, "thread#{i}") }
        value = m.join(reader)
        [r, w].each(&:close)
        value
      end
    end.map(&:value)
    assert_equal %w[thread0 thread1], results
  end

  def test_waiting_on_the_ring_lets_other_threads_run
    counter = 0
    ticker = Thread.new { 50.times { counter += 1; sleep 0.001 } }
    machine.sleep(0.2)
    ticker.join
    assert_equal 50, counter
  end

  def test_schedule_from_another_thread_wakes_a_suspended_fiber
    fiber = machine.spin { machine.suspend }
    machine.snooze
    Thread.new { machine.schedule(fiber, :from_thread) }.join
    assert_equal :from_thread, machine.join(fiber)
  end

  def test_wakeup_from_another_thread
    fiber = machine.spin { machine.suspend }
    machine.snooze
    waker = Thread.new do
      sleep 0.01
      machine.schedule(fiber, :woken)
      machine.wakeup
    end
    assert_equal :woken, machine.join(fiber)
    waker.join
  end

  def test_thread_raise_interrupts_a_ring_wait
    r, w = IO.pipe
    main = Thread.current
    Thread.new { sleep 0.05; main.raise(IOError, "from another thread") }
    buffer = +"keep"
    assert_raises(IOError) { machine.read(r, buffer, 10) }
    w << "after"
    assert_equal "keep", buffer
    assert_equal 5, machine.read(r, buffer, 10)
  ensure
    [r, w].each { |io| io&.close }
  end
end
