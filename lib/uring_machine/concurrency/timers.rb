# frozen_string_literal: true

# UringMachine.every, after, spin_loop and throttled_loop: code run on a schedule.

module UringMachine
  # Runs the block every +interval+ seconds, in the current fiber, until it breaks out (or the
  # fiber is stopped). Tick n is due at start + n·interval (n = 1, 2, ...): the block's own
  # time does not make the ticks drift, and the ticks that passed while it ran are skipped.
  # Yields n.
  def self.every(interval, &block)
    raise ArgumentError, "every needs a block" unless block

    ticks(positive_seconds(interval, "interval"), first: 1, count: nil, &block)
  end

  # Runs the block at most +rate+ times a second (or once every +interval+ seconds), in the
  # current fiber: the first time at once, time n at start + n·interval, skipping the times
  # that passed while it ran. +count+: how many times in all (nil: until it breaks out).
  # Yields n. Returns nil after +count+ times.
  def self.throttled_loop(rate = nil, interval: nil, count: nil, &block)
    raise ArgumentError, "throttled_loop needs a block" unless block
    raise ArgumentError, "give a rate or an interval, not both" if rate && interval
    raise ArgumentError, "throttled_loop needs a rate or an interval" unless rate || interval
    raise ArgumentError, "count must be a non-negative Integer" unless count.nil? || (count.is_a?(Integer) && !count.negative?)

    seconds = interval ? positive_seconds(interval, "interval") : 1.0 / positive_seconds(rate, "rate")
    ticks(seconds, first: 0, count: count, &block)
  end

  # A fiber (a child of the current one, as spin) that runs the block after +delay+ seconds
  # and ends with its value; stop it to cancel.
  def self.after(delay, &block)
    raise ArgumentError, "after needs a block" unless block

    seconds = positive_seconds(delay, "delay", zero: true)
    spin do
      current_machine.sleep(seconds)
      block.call
    end
  end

  # A fiber (a child of the current one) that runs the block over and over, with +args+; at
  # most +rate+ times a second, or once every +interval+ seconds, if given (see
  # throttled_loop). Stop it to end it, or break out of the block.
  def self.spin_loop(*args, rate: nil, interval: nil, &block)
    raise ArgumentError, "spin_loop needs a block" unless block
    return spin { throttled_loop(rate, interval: interval) { block.call(*args) } } if rate || interval

    spin { loop { block.call(*args) } }
  end

  # Runs the block at start + n·interval for n = first, first + 1, ... (skipping what passed),
  # +count+ times (nil: forever).
  def self.ticks(interval, first:, count:)
    machine = current_machine
    start = ::Process.clock_gettime(::Process::CLOCK_MONOTONIC)
    n = first
    done = 0
    until count && done == count
      machine.sleep(wait_until(start + (n * interval)))
      yield n
      done += 1
      n = next_tick(start, interval, n)
    end
  end
  private_class_method :ticks

  # The next tick after n that is still to come.
  def self.next_tick(start, interval, n)
    passed = ((::Process.clock_gettime(::Process::CLOCK_MONOTONIC) - start) / interval).floor
    [n + 1, passed + 1].max
  end
  private_class_method :next_tick

  def self.wait_until(time)
    [time - ::Process.clock_gettime(::Process::CLOCK_MONOTONIC), 0].max
  end
  private_class_method :wait_until

  def self.positive_seconds(value, name, zero: false)
    raise TypeError, "#{name} must be a number of seconds, not #{value.class}" unless value.is_a?(Numeric) && value.real?

    valid = zero ? !value.negative? : value.positive?
    raise ArgumentError, "#{name} must be #{zero ? 'zero or more' : 'positive'}, not #{value}" unless valid && value.finite?

    value.to_f
  end
  private_class_method :positive_seconds
end
