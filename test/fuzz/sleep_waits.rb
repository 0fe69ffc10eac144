# frozen_string_literal: true

module Fuzz
  # The waits a sleeper makes before it sleeps, each with a timeout that something else races
  # to end first.
  class Waits
    attr_reader :queue

    def initialize(machine, scheduler, rng)
      @machine = machine
      @scheduler = scheduler
      @rng = rng
      @queue = Thread::Queue.new
      @mutex = Thread::Mutex.new
      @condition = Thread::ConditionVariable.new
      @signaller = nil
    end

    def kinds
      @scheduler ? %i[queue condition pipe wait_readable none] : %i[pipe poll none]
    end

    # A short wait of +kind+ on +pipe+'s read end (or the shared queue and condition).
    def wait(kind, pipe, seconds)
      case kind
      when :queue then pop(seconds)
      when :condition then condition_wait(seconds)
      when :wait_readable then pipe.first.wait_readable(seconds) && drain(pipe.first)
      when :pipe then @machine.timeout(seconds, Fuzz::Timeout) { @machine.read(pipe.first, +"", 64) }
      when :poll then @machine.timeout(seconds, Fuzz::Timeout) { @machine.poll(pipe.first, IO::READABLE) }
      end
    rescue Fuzz::Timeout
      nil
    end

    # Signals the condition from the outside thread (see Sleeps#start).
    def signal
      @mutex.synchronize { @rng.rand(2).zero? ? @condition.signal : @condition.broadcast }
    end

    private

    # Not Mutex#synchronize: an interrupt that arrives while ConditionVariable#wait takes the
    # mutex back leaves it unlocked (CRuby's behaviour), and synchronize would then raise
    # ThreadError unlocking it.
    def condition_wait(seconds)
      @mutex.lock
      begin
        @condition.wait(@mutex, seconds)
      ensure
        @mutex.unlock if @mutex.owned?
      end
    end

    def pop(seconds)
      return @queue.pop(timeout: seconds) if Fuzz.queue_pop_timeout?

      ::Timeout.timeout(seconds, Fuzz::Timeout) { @queue.pop }
    end

    def drain(io)
      io.read_nonblock(64, exception: false)
    end
  end
end
