# frozen_string_literal: true

module Fuzz
  # Puts a short timeout around some of the workers' operations: Machine#timeout with an
  # exception instance of its own, or (under the scheduler) Timeout.timeout with a message of
  # its own. A Fuzz::Timeout that leaves the block of another timeout, or that arrives where no
  # timeout was running, escaped the block that caused it: a stray (issue 18, item 1).
  class Timeouts
    def initialize(rng, report, machine:, scheduler: false, rate: 0.15)
      @rng = rng
      @report = report
      @machine = machine
      @scheduler = scheduler
      @rate = rate
      @serial = 0
    end

    def around(&block)
      return yield unless @rng.rand < @rate

      seconds = @rng.rand(50..20_000) / 1e6
      name = "fuzz timeout #{@serial += 1}"
      if @scheduler && @rng.rand(2).zero?
        timeout_gem(seconds, name, &block)
      else
        machine_timeout(seconds, name, &block)
      end
    end

    # Call with every Fuzz::Timeout a worker rescues.
    def check(error, where)
      return unless error.is_a?(Fuzz::Timeout)
      return if error.instance_variable_get(:@fuzz_timeout_owned)

      @report.defect(:stray_timeout, "#{where}: #{error.message.inspect} was raised outside the block of its timeout")
    end

    private

    def machine_timeout(seconds, name)
      exception = Fuzz::Timeout.new(name)
      @machine.timeout(seconds, exception) { yield }
    rescue Fuzz::Timeout => e
      own(e) if e.equal?(exception)
      raise
    end

    def timeout_gem(seconds, name)
      ::Timeout.timeout(seconds, Fuzz::Timeout, name) { yield }
    rescue Fuzz::Timeout => e
      own(e) if e.message == name
      raise
    end

    def own(error)
      error.instance_variable_set(:@fuzz_timeout_owned, true)
    end
  end
end
