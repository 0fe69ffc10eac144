# frozen_string_literal: true

require_relative "scheduler_helper"

# Schedulers in 8 threads trading messages: fibers push into other threads' SizedQueues (and
# wait when they are full), a token goes round the threads through one Mutex and
# ConditionVariable. Every message is delivered exactly once. UM_STRESS=1: 20 times as many.
class TestStressThreads < SchedulerTest
  THREADS = 8
  SCALE = ENV["UM_STRESS"] ? 20 : 1
  PRODUCERS = 4 # fibers per thread
  MESSAGES = 25 * SCALE # per producer and destination thread
  ROUNDS = 50 * SCALE # of the token ring

  def test_queues_between_schedulers_in_threads
    inboxes = Array.new(THREADS) { Thread::SizedQueue.new(8) }
    expected = THREADS - 1 # senders per thread
    threads = THREADS.times.map do |t|
      scheduler_thread do
        received = []
        PRODUCERS.times do |p|
          schedule_fiber do
            MESSAGES.times do |m|
              THREADS.times { |to| inboxes[to] << [t, p, m] unless to == t }
            end
          end
        end
        schedule_fiber do
          (expected * PRODUCERS * MESSAGES).times { received << inboxes[t].pop }
        end
        Fiber.set_scheduler(nil)
        received
      end
    end
    results = threads.map { |thread| finish(thread, limit: 60) }
    results.each_with_index do |received, t|
      want = THREADS.times.reject { |from| from == t }.product(PRODUCERS.times.to_a, MESSAGES.times.to_a)
      assert_equal want.size, received.size, "thread #{t}: messages lost or duplicated"
      assert_equal want.sort, received.sort, "thread #{t}: not every message once"
      PRODUCERS.times do |p| # one producer's messages arrive in the order sent
        THREADS.times do |from|
          sequence = received.select { |f, pr, _| f == from && pr == p }.map(&:last)
          assert_equal sequence.sort, sequence, "thread #{t}: out of order from #{from}/#{p}"
        end
      end
    end
  end

  def test_a_token_ring_through_one_condition_variable
    lock = Thread::Mutex.new
    changed = Thread::ConditionVariable.new
    state = { turn: 0, hops: [] }
    total = THREADS * ROUNDS
    threads = THREADS.times.map do |t|
      scheduler_thread do
        ticks = 0
        busy = true
        schedule_fiber do # other fibers of the thread keep running meanwhile
          while busy
            sleep 0.001
            ticks += 1
          end
        end
        schedule_fiber do
          ROUNDS.times do
            lock.synchronize do
              changed.wait(lock) until state[:turn] == t
              state[:hops] << t
              state[:turn] = (t + 1) % THREADS
              changed.broadcast
            end
          end
        ensure
          busy = false
        end
        Fiber.set_scheduler(nil)
        ticks
      end
    end
    ticks = threads.map { |thread| finish(thread, limit: 60) }
    assert_equal total, state[:hops].size
    assert_equal Array.new(ROUNDS) { THREADS.times.to_a }.flatten, state[:hops], "the token went round in order"
    assert ticks.all?(&:positive?), "every thread's other fiber ran: #{ticks.inspect}"
  end
end
