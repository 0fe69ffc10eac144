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

  # Pops the numbers another thread pushes to a Queue (each push unblocks this fiber from that
  # thread) until :done: every number must arrive once, in order, interrupts or not.
  class Courier
    def initialize(queue, report, timeouts)
      @queue = queue
      @report = report
      @timeouts = timeouts
    end

    def run
      due = 0
      while (token = pop) != :done
        if token != due
          kind = token > due ? :missing : :duplicated
          @report.defect(kind, "queue from another thread: #{token} arrived where #{due} was due")
        end
        due = token + 1 if token >= due
        @report.count(:queue_tokens)
      end
    end

    private

    def pop
      @timeouts.around { @queue.pop }
    rescue Fuzz::Interrupt, Fuzz::Timeout => e
      @timeouts.check(e, "courier")
      retry
    end
  end
end
