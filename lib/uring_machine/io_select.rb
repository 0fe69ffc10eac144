# frozen_string_literal: true

module UringMachine
  # Ruby 3.1 has no io_select hook: IO.select in a fiber blocks the whole thread, so a server
  # that selects on its listening sockets (WEBrick) starves every other fiber. Under our
  # scheduler, in a non-blocking fiber, an IO.select that may wait goes to Scheduler#io_select
  # instead, which waits in the ring while the other fibers run. A zero (or invalid) timeout,
  # no scheduler, another scheduler or a blocking fiber: Ruby's own IO.select, unchanged.
  # Ruby 3.2+ calls io_select itself; this module is only prepended before that.
  module IOSelect
    def select(*args)
      scheduler = Fiber.scheduler
      return super unless scheduler.is_a?(Scheduler) && !Fiber.current.blocking?
      return super unless IOSelect.may_wait?(args)

      scheduler.io_select(*args)
    end

    # 1 to 4 arguments, and a timeout that is nil or a positive Integer, Float or Rational:
    # anything else is answered (or rejected) by Ruby at once. (Other objects are not asked
    # whether they are positive: that may raise what IO.select would not.)
    def self.may_wait?(args)
      return false unless args.size.between?(1, 4)

      timeout = args[3]
      timeout.nil? || (REAL.any? { |c| timeout.is_a?(c) } && timeout.positive?)
    end

    REAL = [Integer, Float, Rational].freeze

    # Whether this Ruby calls the io_select hook itself (3.2+). No Gem::Version: the gem may be
    # loaded with --disable-gems.
    def self.native_hook?
      (RUBY_VERSION.split(".").map(&:to_i) <=> [3, 2]) >= 0
    end
  end

  IO.singleton_class.prepend(IOSelect) unless IOSelect.native_hook?
end
