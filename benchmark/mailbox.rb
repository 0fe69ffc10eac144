# frozen_string_literal: true

# Ruby layer workload: ping-pong between two fibers, 50,000 round trips (100,000 messages).
# Ours: mailboxes (fiber << message, UringMachine.receive) on the Machine API and under the
# scheduler; against a pair of Thread::Queue between the same two fibers under our scheduler,
# Async::Queue under Async (when installed), and Thread::Queue between two threads. Baseline:
# the Thread::Queue pair between fibers. One op = one message.
require "uring_machine"
require_relative "harness"

module MailboxBench
  ROUNDS = Bench.scaled(50_000)
  OPS = 2 * ROUNDS

  module_function

  def check(count)
    raise "#{count} round trips, expected #{ROUNDS}" unless count == ROUNDS

    count
  end

  # The pong fiber answers each ping; the ping side counts the answers.
  def mailbox_rounds
    pong = UringMachine.spin { ROUNDS.times { UringMachine.receive.then { |from| from << :pong } } }
    me = Fiber.current
    check(ROUNDS.times.count { pong << me; UringMachine.receive == :pong })
  end

  def queue_rounds(spawn)
    pings = Thread::Queue.new
    pongs = Thread::Queue.new
    spawn.call { ROUNDS.times { pings.pop; pongs.push(:pong) } }
    check(ROUNDS.times.count { pings.push(:ping); pongs.pop == :pong })
  end

  def modes
    modes = {
      "queue-fibers" => ->(_) { Bench.on_scheduler([-> { queue_rounds(->(&b) { Fiber.schedule(&b) }) }]) },
      "mailbox-machine" => ->(_) { Thread.new { machine = UringMachine.machine; machine.join(machine.spin { mailbox_rounds }) }.join },
      "mailbox-sched" => ->(_) { Bench.on_scheduler([-> { mailbox_rounds }]) }
    }
    if Bench.async?
      require "async/queue"
      modes["async-queue"] = ->(_) { Thread.new { Async { async_rounds } }.join }
    else
      puts "async: not installed"
    end
    modes["queue-threads"] = ->(_) { queue_rounds(->(&b) { Thread.new(&b) }) }
    modes
  end

  def async_rounds
    pings = Async::Queue.new
    pongs = Async::Queue.new
    Async { ROUNDS.times { pings.dequeue; pongs.enqueue(:pong) } }
    check(ROUNDS.times.count { pings.enqueue(:ping); pongs.dequeue == :pong })
  end

  def run
    puts "mailbox: ping-pong between two fibers, #{ROUNDS} round trips (#{OPS} messages), " \
         "best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    results = Bench.run(modes, setup: -> {}, teardown: ->(_) {})
    Bench.report(results, baseline: "queue-fibers", ops: OPS)
  end
end

MailboxBench.run if $PROGRAM_NAME == __FILE__
