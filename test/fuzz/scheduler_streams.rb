# frozen_string_literal: true

module Fuzz
  # Part "scheduler_streams": record streams through Ruby's IO methods under
  # UringMachine::Scheduler (fast paths on or off), under Timeout.timeout and Machine#timeout,
  # the chaos fiber, closes, a thread that interrupts from outside, and a courier fiber that
  # pops what that thread pushes to a Queue (cross-thread Scheduler#unblock).
  class SchedulerStreams < StreamEpisode
    private

    def run_fibers
      fast_io = UringMachine.fast_io
      UringMachine.fast_io = @rng.rand(2).zero?
      scheduler = UringMachine::Scheduler.new
      Fiber.set_scheduler(scheduler)
      start_fibers(scheduler.machine)
      Fiber.set_scheduler(nil) # runs every fiber to its end
    ensure
      UringMachine.fast_io = fast_io
    end

    def start_fibers(machine)
      timeouts = Timeouts.new(@rng, @report, machine: machine, scheduler: true)
      workers = worker_bodies(machine, SchedulerPort, timeouts).map do |label, body|
        Fiber.schedule { @report.guard(label, &body) }
      end
      queue = Thread::Queue.new
      workers << Fiber.schedule { @report.guard("courier") { Courier.new(queue, @report, timeouts).run } }
      tokens = 0.step
      outsider = CrossThread.new(machine, Random.new(@rng.rand(2**32)), @report, workers, until: @deadline,
                                 pokes: [-> { queue.push(tokens.next) }], at_end: -> { queue.push(:done) })
      chaos = Chaos.new(machine, Random.new(@rng.rand(2**32)), victims: workers, channels: @channels)
      Fiber.schedule do
        @report.guard("chaos") { chaos.run }
        outsider.stop
      end
    end
  end
end
