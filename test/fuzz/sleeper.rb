# frozen_string_literal: true

module Fuzz
  # One sleeping fiber of the sleeps part.
  class Sleeper
    def initialize(index, machine, waits, pipe, rng, report, scheduler:, deadline:)
      @label = "sleeper #{index}"
      @machine = machine
      @waits = waits
      @pipe = pipe
      @rng = rng
      @report = report
      @scheduler = scheduler
      @deadline = deadline
    end

    def run
      while Fuzz.now < @deadline
        begin
          @waits.wait(@waits.kinds.sample(random: @rng), @pipe, @rng.rand(100..3000) / 1e6)
          checked_sleep(@rng.rand(200..8000) / 1e6)
        rescue Fuzz::Interrupt, Fuzz::Timeout, IOError
          nil # an interrupted or timed out sleep is not checked; a closed pipe stays closed
        end
      end
    end

    private

    def checked_sleep(seconds)
      start = Fuzz.now
      how = timed_sleep(seconds)
      slept = Fuzz.now - start
      @report.count(:sleeps_checked)
      return if slept >= seconds - Sleeps::TOLERANCE

      @report.defect(:early_sleep, "#{@label}: #{how}(#{seconds}) returned after #{(slept * 1e6).round(1)} µs")
    end

    # Sleeps, bare or inside a longer timeout; returns how.
    def timed_sleep(seconds)
      how = @scheduler && @rng.rand(3).positive? ? "sleep" : "Machine#sleep"
      nap = proc { how == "sleep" ? sleep(seconds) : @machine.sleep(seconds) }
      case @rng.rand(4)
      when 0
        @machine.timeout(seconds * 3, Fuzz::Timeout, &nap)
        "#{how} in Machine#timeout"
      when 1
        return timed_sleep(seconds) unless @scheduler

        ::Timeout.timeout(seconds * 3, Fuzz::Timeout, &nap)
        "#{how} in Timeout.timeout"
      else
        nap.call
        how
      end
    end
  end
end
