# frozen_string_literal: true

require_relative "scheduler_helper"
require "timeout"

class TestSchedulerSync < SchedulerTest
  def test_mutex_between_fibers_excludes_across_waits
    counter, max_inside = with_scheduler do
      mutex = Mutex.new
      counter = 0
      inside = max_inside = 0
      20.times do
        schedule_fiber do
          mutex.synchronize do
            inside += 1
            max_inside = [max_inside, inside].max
            value = counter
            sleep 0.001 # other fibers run and try to lock meanwhile
            counter = value + 1
            inside -= 1
          end
        end
      end
      Fiber.set_scheduler(nil)
      [counter, max_inside]
    end
    assert_equal 20, counter
    assert_equal 1, max_inside
  end

  def test_condition_variable_between_fibers
    got = with_scheduler do
      mutex = Mutex.new
      cv = ConditionVariable.new
      items = []
      got = []
      3.times do
        schedule_fiber do
          mutex.synchronize do
            cv.wait(mutex) while items.empty?
            got << items.shift
          end
        end
      end
      schedule_fiber do
        3.times do |i|
          sleep 0.002
          mutex.synchronize do
            items << i
            cv.signal
          end
        end
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal [0, 1, 2], got.sort
  end

  def test_condition_variable_wait_with_timeout
    got = with_scheduler do
      got = {}
      schedule_fiber do
        mutex = Mutex.new
        mutex.synchronize do
          got[:time] = elapsed { cv_wait(ConditionVariable.new, mutex, 0.03) }
          got[:owned] = mutex.owned?
        end
      end
      got
    end
    assert_operator got[:time], :>=, 0.025
    assert_operator got[:time], :<, 2
    assert got[:owned], "the mutex is locked again after the wait"
  end

  def test_queue_between_fibers
    got = with_scheduler do
      queue = Queue.new
      got = []
      schedule_fiber { while (item = queue.pop) do got << item end }
      schedule_fiber do
        10.times do |i|
          queue << i
          sleep 0.001 if i.even?
        end
        queue.close
      end
      got
    end
    assert_equal (0...10).to_a, got
  end

  def test_sized_queue_blocks_the_producer
    log = with_scheduler do
      queue = SizedQueue.new(2)
      log = []
      schedule_fiber do
        6.times do |i|
          queue.push(i)
          log << [:pushed, i]
        end
      end
      schedule_fiber do
        6.times do
          sleep 0.002
          log << [:popped, queue.pop]
        end
      end
      log
    end
    assert_equal (0...6).to_a, log.select { |op, _| op == :popped }.map(&:last)
    pushed_before_first_pop = log.index([:popped, 0])
    assert_equal 2, pushed_before_first_pop, "SizedQueue(2) let #{log.inspect} through"
  end

  def test_queue_pop_with_timeout
    skip "Queue#pop(timeout:) needs Ruby 3.2+" unless ruby_at_least?("3.2")

    got = with_scheduler do
      got = {}
      schedule_fiber do
        queue = Queue.new
        got[:time] = elapsed { got[:value] = queue.pop(timeout: 0.02) }
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_nil got[:value]
    assert_operator got[:time], :>=, 0.015
  end

  def test_timeout_around_queue_pop_does_not_lose_a_later_item
    got = with_scheduler do
      queue = Queue.new
      got = []
      schedule_fiber do
        got << assert_raises(Timeout::Error) { Timeout.timeout(0.01) { queue.pop } }.class
        got << queue.pop
      end
      schedule_fiber do
        sleep 0.05
        queue << :item
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal [Timeout::Error, :item], got
  end

  def test_queue_fed_by_another_thread
    got = with_scheduler do
      queue = Queue.new
      got = []
      10.times { schedule_fiber { got << queue.pop } }
      ticks = 0
      schedule_fiber { 5.times { sleep 0.001; ticks += 1 } }
      feeder = Thread.new do
        sleep 0.02
        10.times { |i| queue << i }
      end
      Fiber.set_scheduler(nil)
      feeder.join
      got << ticks
    end
    assert_equal 5, got.pop
    assert_equal (0...10).to_a, got.sort
  end

  def test_thread_waits_on_a_queue_fed_by_a_fiber
    got = with_scheduler do
      queue = Queue.new
      back = Queue.new
      consumer = Thread.new { 3.times { back << queue.pop * 10 } }
      got = []
      schedule_fiber do
        3.times do |i|
          sleep 0.002
          queue << i
          got << back.pop
        end
      end
      Fiber.set_scheduler(nil)
      consumer.join(10)
      got
    end
    assert_equal [0, 10, 20], got
  end

  def test_mutex_held_by_another_thread
    got = with_scheduler do
      mutex = Mutex.new
      locked = Queue.new
      release = Queue.new
      holder = Thread.new do
        mutex.synchronize do
          locked << true
          release.pop
        end
      end
      locked.pop # the root fiber is blocking: a plain wait
      got = []
      schedule_fiber { mutex.synchronize { got << :fiber_locked } }
      schedule_fiber do
        3.times do
          sleep 0.002
          got << :tick
        end
        release << true
      end
      Fiber.set_scheduler(nil)
      holder.join(10)
      got
    end
    assert_equal %i[tick tick tick fiber_locked], got
  end

  def test_condition_variable_signalled_by_another_thread
    got = with_scheduler do
      mutex = Mutex.new
      cv = ConditionVariable.new
      ready = false
      got = nil
      schedule_fiber do
        mutex.synchronize do
          cv.wait(mutex) until ready
          got = :signalled
        end
      end
      signaller = Thread.new do
        sleep 0.01
        mutex.synchronize do
          ready = true
          cv.signal
        end
      end
      Fiber.set_scheduler(nil)
      signaller.join(10)
      got
    end
    assert_equal :signalled, got
  end

  def test_thread_join_with_a_limit_from_a_fiber
    # CRuby 3.1's thread_join_sleep calls the block hook again after it timed out: forever.
    skip "Thread#join(limit) never times out in a non-blocking fiber on Ruby 3.1" unless ruby_at_least?("3.2")

    got = with_scheduler do
      release = Queue.new
      slow = Thread.new { release.pop }
      got = {}
      ticks = 0
      schedule_fiber do
        got[:time] = elapsed { got[:timed_out] = slow.join(0.05) }
        release << :go
        got[:joined] = slow.join(10)
      end
      schedule_fiber { 3.times { sleep 0.005; ticks += 1 } }
      Fiber.set_scheduler(nil)
      got.merge(ticks: ticks, slow: slow)
    end
    assert_nil got[:timed_out]
    assert_operator got[:time], :>=, 0.04
    assert_operator got[:time], :<, 2
    assert_same got[:slow], got[:joined]
    assert_equal 3, got[:ticks], "other fibers run while a fiber joins a thread"
  end

  def test_thread_join_without_a_limit_from_a_fiber
    got = with_scheduler do
      release = Queue.new
      worker = Thread.new { release.pop }
      got = {}
      ticks = 0
      schedule_fiber { got[:joined] = worker.join }
      schedule_fiber do
        3.times do
          sleep 0.002
          ticks += 1
        end
        release << :go
      end
      Fiber.set_scheduler(nil)
      got.merge(ticks: ticks, worker: worker)
    end
    assert_same got[:worker], got[:joined]
    assert_equal 3, got[:ticks]
  end

  def test_thread_value_from_a_fiber
    got = with_scheduler do
      got = nil
      schedule_fiber do
        thread = Thread.new do
          sleep 0.01
          :computed
        end
        got = thread.value
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal :computed, got
  end

  def test_block_and_unblock_hooks_directly
    got = with_scheduler do |scheduler|
      got = {}
      schedule_fiber do
        got[:timeout] = scheduler.block(:blocker, 0.01)
        me = Fiber.current
        Thread.new do
          sleep 0.01
          scheduler.unblock(:blocker, me)
        end
        got[:unblocked] = scheduler.block(:blocker, 10)
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal false, got[:timeout]
    assert got[:unblocked], "block returns truthy when unblocked"
  end

  private

  def cv_wait(cv, mutex, timeout)
    cv.wait(mutex, timeout)
  end
end
