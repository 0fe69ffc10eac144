# frozen_string_literal: true

module Fuzz
  # Fibers the chaos leaves alone for a moment: one in IO#gets, which loses the part of a line
  # it had taken when an interrupt ends it (CRuby's behaviour, with or without a scheduler).
  SHIELDED = {}.compare_by_identity

  def self.shield
    SHIELDED[Fiber.current] = true
    yield
  ensure
    SHIELDED.delete(Fiber.current)
  end

  # The chaos fiber of an episode: until its victims have finished, it interrupts one of them
  # now and then (Machine#schedule with an exception, Fiber#raise), closes an end of a channel
  # once in a while, and compacts the heap (GC.compact moves the Strings whose bytes are in
  # flight unless they are pinned).
  class Chaos
    COMPACT_EVERY = 0.25 # seconds, at most

    def initialize(machine, rng, victims:, channels: [], closes: true)
      @machine = machine
      @rng = rng
      @victims = victims
      @channels = channels
      @closes = closes
      @last_compact = Fuzz.now
    end

    def run
      while @victims.any?(&:alive?)
        @machine.sleep(@rng.rand * 0.003)
        act
      end
    end

    private

    def act
      case @rng.rand(100)
      when 0...35 then interrupt(@victims.sample(random: @rng))
      when 35...37 then close_an_end if @closes
      when 37...45 then compact
      end
    end

    def interrupt(fiber)
      return if !fiber.alive? || SHIELDED.key?(fiber)

      if @rng.rand(2).zero?
        @machine.schedule(fiber, Interrupt.new("scheduled by the chaos fiber"))
      else
        fiber.raise(Interrupt, "Fiber#raise by the chaos fiber")
      end
    rescue FiberError
      nil # not started yet, or just finished
    end

    # Closes the reading or the writing end of a channel from this fiber (the fibers waiting
    # on it get IOError). At most one end per channel.
    def close_an_end
      channel = @channels.sample(random: @rng)
      return if channel.nil? || channel.reader_closed_by_chaos || channel.writer_closed_by_chaos

      if @rng.rand(2).zero?
        channel.writer_closed_by_chaos = true
        channel.close_writer
      else
        channel.reader_closed_by_chaos = true
        channel.close_reader
      end
    end

    def compact
      return unless Fuzz.compaction? && Fuzz.now - @last_compact > COMPACT_EVERY

      GC.compact
      @last_compact = Fuzz.now
    end
  end

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
