# frozen_string_literal: true

module Fuzz
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
end
