# frozen_string_literal: true

require_relative "layer_helper"

# Mailboxes: fiber << message, receive (plain, selective), limits that make senders wait,
# receive_all_pending, across fibers and threads; with the Machine API and under the scheduler.
module MailboxCases
  def test_messages_arrive_in_order
    received = run_in_fiber do
      receiver = UringMachine.spin { Array.new(3) { UringMachine.receive } }
      receiver << :a << :b
      pass_control
      receiver << :c
      receiver.join
    end
    assert_equal %i[a b c], received
  end

  def test_receive_waits_without_blocking_other_fibers
    log = []
    run_in_fiber do
      receiver = UringMachine.spin { log << [:got, UringMachine.receive] }
      other = UringMachine.spin { log << :other_ran }
      pass_control
      other.join
      receiver << :late
      receiver.join
    end
    assert_equal [:other_ran, %i[got late]], log
  end

  def test_selective_receive_keeps_the_others_in_order
    received = run_in_fiber do
      me = Fiber.current
      me << 1 << :x << 2 << :y << 3
      picked = UringMachine.receive { |m| m.is_a?(Symbol) }
      [picked, UringMachine.receive_all_pending]
    end
    assert_equal [:x, [1, 2, :y, 3]], received
  end

  def test_selective_receive_waits_for_a_matching_message
    result = run_in_fiber do
      receiver = UringMachine.spin { UringMachine.receive { |m| m == :wanted } }
      receiver << :other1 << :other2
      pass_control
      assert receiver.alive?, "still waiting: no message matched"
      receiver << :wanted
      [receiver.join, receiver.mailbox.receive_all_pending]
    end
    assert_equal [:wanted, %i[other1 other2]], result
  end

  def test_a_standalone_mailbox_with_several_receivers
    taken = run_in_fiber do
      box = UringMachine::Mailbox.new
      receivers = Array.new(3) { UringMachine.spin { box.receive } }
      pass_control
      box.push(:a).push(:b).push(:c)
      [receivers.map(&:join).sort, box.size]
    end
    assert_equal [%i[a b c], 0], taken
  end

  def test_receive_all_pending_does_not_wait
    assert_equal [], run_in_fiber { UringMachine.receive_all_pending }
  end

  def test_a_full_mailbox_makes_the_sender_wait
    log = []
    run_in_fiber do
      receiver = UringMachine.spin do
        pass_control until log.size >= 2 # the sender has filled the mailbox
        pass_control # and would go on if it could
        log << :receiving
        Array.new(4) { UringMachine.receive }
      end
      receiver.mailbox_limit = 2
      sender = UringMachine.spin do
        4.times do |i|
          receiver << i
          log << [:sent, i]
        end
      end
      assert_equal [0, 1, 2, 3], receiver.join
      sender.join
    end
    assert_equal [[:sent, 0], [:sent, 1], :receiving], log.first(3)
  end

  def test_mailbox_limit_validation
    run_in_fiber do
      assert_raises(ArgumentError) { Fiber.current.mailbox_limit = 0 }
      assert_raises(TypeError) { Fiber.current.mailbox_limit = "2" }
      Fiber.current.mailbox_limit = 3
      assert_equal 3, Fiber.current.mailbox_limit
      Fiber.current.mailbox_limit = nil
      assert_nil Fiber.current.mailbox_limit
    end
  end

  def test_a_receive_is_interrupted_by_stop
    value = run_in_fiber do
      receiver = UringMachine.spin { UringMachine.receive }
      pass_control
      receiver.stop(:stopped)
      receiver.join
    end
    assert_equal :stopped, value
  end

  def test_messages_from_another_thread
    received = run_in_fiber do
      receiver = UringMachine.spin { Array.new(100) { UringMachine.receive } }
      sender = Thread.new { 100.times { |i| receiver << i } }
      values = receiver.join
      sender.join
      values
    end
    assert_equal (0...100).to_a, received
  end

  def test_a_sender_on_another_thread_waits_for_room_without_blocking_the_receivers_thread
    log = []
    received = run_in_fiber do
      receiver = UringMachine.spin do
        Fiber.current.mailbox_limit = 1
        Array.new(20) do
          pass_control
          UringMachine.receive
        end
      end
      pass_control
      ticker = UringMachine.spin { 5.times { log << :tick; pass_control } }
      sender = Thread.new { 20.times { |i| receiver << i } }
      values = receiver.join
      ticker.join
      sender.join
      values
    end
    assert_equal (0...20).to_a, received
    assert_equal 5, log.count(:tick)
  end
end

class TestMailboxMachine < Minitest::Test
  include MailboxCases
  include LayerOnMachine
end

class TestMailboxScheduler < SchedulerTest
  include MailboxCases
  include LayerOnScheduler

  def test_the_root_fiber_receives_under_the_scheduler
    received = with_scheduler do
      root = Fiber.current
      Fiber.schedule { root << :from_a_fiber }
      UringMachine.receive
    end
    assert_equal :from_a_fiber, received
  end
end
