# frozen_string_literal: true

module Fuzz
  # A thread that, until the deadline, interrupts an episode's fibers from outside
  # (Machine#schedule from another thread), wakes the machine (Machine#wakeup) and calls one of
  # its +pokes+ (a Queue#push, a ConditionVariable#signal: the fiber waiting there is unblocked
  # from this thread); +at_end+ runs when it stops.
  class CrossThread
    def initialize(machine, rng, report, victims, until:, pokes: [], at_end: nil)
      @machine = machine
      @rng = rng
      @report = report
      @victims = victims
      @deadline = binding.local_variable_get(:until)
      @pokes = pokes
      @at_end = at_end
      @thread = Thread.new { run }
    end

    def stop
      @thread.join
    end

    private

    def run
      while Fuzz.now < @deadline
        sleep(@rng.rand * 0.004)
        case @rng.rand(4)
        when 0 then @machine.wakeup
        when 1 then @pokes.empty? ? interrupt : @pokes.sample(random: @rng).call
        else interrupt
        end
      end
    rescue StandardError => e
      @report.error("cross-thread interrupter", e)
    ensure
      @at_end&.call
    end

    def interrupt
      victim = @victims.sample(random: @rng)
      return if victim.nil? || !victim.alive? || SHIELDED.key?(victim)

      @machine.schedule(victim, Interrupt.new("scheduled from another thread"))
    end
  end
end
