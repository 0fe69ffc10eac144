# frozen_string_literal: true

require "minitest/autorun"
require "uring_machine"

# UringMachine.stats: every live thread's machine, read from another thread, with the gauges
# a user exports (fibers alive, timers, ops in flight, run queue) and the counters of
# Machine#metrics.
class TestStats < Minitest::Test
  # A thread whose machine runs +sleepers+ fibers asleep (a timer each) and one fiber parked on
  # a queue; yields the thread while they wait, then lets them finish.
  def with_busy_thread(sleepers)
    started = Thread::Queue.new
    release = Thread::Queue.new
    thread = Thread.new do
      machine = UringMachine.machine
      asleep = Array.new(sleepers) { machine.spin { machine.sleep(600) } }
      parked = machine.spin do
        started << :ready
        release.pop
      end
      parked.join
      asleep.each(&:stop)
      machine.join(*asleep)
      machine.metrics
    end
    started.pop
    yield thread
    release << :go
    thread.value
  end

  def stats_of(thread)
    UringMachine.stats.find { |s| s[:thread] == thread }
  end

  def test_lists_another_threads_machine_with_its_fibers_and_timers
    ending = with_busy_thread(3) do |thread|
      stats = stats_of(thread)
      refute_nil stats, "the busy thread's machine is listed"
      assert_equal 4, stats[:fibers]
      assert_equal 3, stats[:timers]
      assert_operator stats[:in_flight], :>=, 3
      assert_operator stats[:switches], :>, 0
      assert_equal 3, stats[:ops][:timeout]
      assert_kind_of Integer, stats[:runqueue]
      assert_kind_of Hash, stats[:direct]
    end
    assert_equal [0, 0], ending.values_at(:fibers, :timers), "finished fibers and fired timers are gone"
  end

  def test_a_thread_without_a_machine_is_not_listed
    thread = Thread.new { Thread.stop }
    Thread.pass until thread.stop?
    assert_nil stats_of(thread)
  ensure
    thread&.wakeup
    thread&.join
  end

  def test_an_ended_thread_is_not_listed
    thread = Thread.new { UringMachine.machine.snooze }
    thread.join
    assert_nil stats_of(thread)
  end
end
