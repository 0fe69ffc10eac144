# frozen_string_literal: true

require_relative "layer_helper"

# UringMachine::Semaphore and UringMachine::ResourcePool. Holders tell the test fiber when they
# are in (a message) and leave when it tells them to, so that nothing depends on timing.
module KitLimitCases
  # Starts +count+ fibers that each hold +semaphore+ until told to leave; each sends
  # [:in, fiber, holders inside at its entry] to the test fiber once in.
  def holders(semaphore, count, inside)
    me = Fiber.current
    Array.new(count) do
      UringMachine.spin do
        semaphore.acquire do
          inside[0] += 1
          me << [:in, Fiber.current, inside[0]]
          UringMachine.receive
          inside[0] -= 1
        end
      end
    end
  end

  def next_entry = UringMachine.receive { |m| m[0] == :in }

  def test_at_most_limit_hold_it
    most = run_in_fiber do
      semaphore = UringMachine::Semaphore.new(2)
      fibers = holders(semaphore, 5, [0])
      seen = []
      inside_now = []
      5.times do
        _, holder, inside = next_entry
        seen << inside
        inside_now << holder
        inside_now.shift << :leave if inside_now.size == 2 # the oldest leaves, the next comes in
      end
      inside_now.each { |holder| holder << :leave }
      UringMachine.await(*fibers)
      [seen.max, seen.size, semaphore.count]
    end
    assert_equal [2, 5, 0], most
  end

  def test_a_larger_limit_lets_waiters_in_and_a_smaller_one_waits_for_releases
    outcome = run_in_fiber do
      inside = [0]
      semaphore = UringMachine::Semaphore.new(1)
      first = holders(semaphore, 3, inside)
      next_entry
      semaphore.limit = 3 # the two waiting come in without any release
      2.times { next_entry }
      semaphore.limit = 1
      late = holders(semaphore, 1, inside)
      entered = nil
      first.each do |holder|
        holder << :leave
        holder.join
      end
      _, _, entered = next_entry # only after all three left: it is alone inside
      late[0] << :leave
      late[0].join
      [entered, semaphore.limit, semaphore.count]
    end
    assert_equal [1, 1, 0], outcome
  end

  def test_acquire_without_a_block_and_release
    run_in_fiber do
      semaphore = UringMachine::Semaphore.new(1)
      assert semaphore.acquire
      assert_equal 1, semaphore.count
      assert_nil semaphore.release
      assert_raises(ThreadError) { semaphore.release }
      assert_equal :value, semaphore.acquire { :value }
    end
  end

  def test_semaphore_bad_input
    assert_raises(TypeError) { UringMachine::Semaphore.new("2") }
    assert_raises(ArgumentError) { UringMachine::Semaphore.new(-1) }
    assert_raises(TypeError) { UringMachine::Semaphore.new(1).limit = nil }
  end

  def test_the_pool_makes_resources_when_needed_up_to_its_limit
    outcome = run_in_fiber do
      made = 0
      pool = UringMachine::ResourcePool.new(limit: 2) { made += 1 }
      before = [made, pool.size]
      sequential = Array.new(3) { pool.acquire { |r| r } }
      me = Fiber.current
      users = Array.new(4) do
        UringMachine.spin do
          pool.acquire do |resource|
            me << [:in, resource]
            UringMachine.receive
          end
        end
      end
      lent = Array.new(2) { next_entry[1] }
      users.each { |user| user << :leave }
      UringMachine.await(*users)
      [before, sequential, lent.sort, made, pool.size, pool.available]
    end
    assert_equal [[0, 0], [1, 1, 1], [1, 2], 2, 2, 2], outcome
  end

  Resource = Struct.new(:id, :closed) do
    def close = self.closed = true
  end

  def test_a_resource_is_discarded_by_a_broken_connection_or_an_interruption_not_by_an_app_error
    outcome = run_in_fiber do
      made = []
      pool = UringMachine::ResourcePool.new(limit: 1) { Resource.new(made.size).tap { |r| made << r } }
      pool.acquire { raise ArgumentError, "bad query" } rescue nil # rubocop:disable Style/RescueModifier
      pool.acquire { raise IOError, "connection reset" } rescue nil # rubocop:disable Style/RescueModifier
      user = UringMachine.spin { pool.acquire { sleep_a_while } }
      pass_control
      user.stop.join
      last = pool.acquire(&:id)
      [made.map(&:closed), last, pool.size]
    end
    assert_equal [[true, true, nil], 2, 1], outcome
  end

  def test_a_failed_creation_frees_its_place
    outcome = run_in_fiber do
      attempts = 0
      pool = UringMachine::ResourcePool.new(limit: 1) { (attempts += 1) == 1 ? raise(IOError, "refused") : :conn }
      first = begin
        pool.acquire { :unreached }
      rescue IOError => e
        e.message
      end
      [first, pool.acquire { |r| r }, pool.size]
    end
    assert_equal ["refused", :conn, 1], outcome
  end

  def test_pool_bad_input
    assert_raises(ArgumentError) { UringMachine::ResourcePool.new(limit: 1) }
    assert_raises(TypeError) { UringMachine::ResourcePool.new(limit: 1, discard_on: [42]) { 1 } }
    assert_raises(ArgumentError) { UringMachine::ResourcePool.new(limit: 1) { 1 }.acquire }
  end
end

class TestKitLimitsMachine < Minitest::Test
  include KitLimitCases
  include LayerOnMachine
end

class TestKitLimitsScheduler < SchedulerTest
  include KitLimitCases
  include LayerOnScheduler
end
