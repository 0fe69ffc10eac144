# frozen_string_literal: true

# What the gem changes in Kernel (see core_ext.rb): sleep(nil) on Ruby 3.1 and 3.2, and the
# global functions, only on `require "uring_machine/global"`.

module UringMachine
  # Kernel#sleep(nil) raises TypeError before Ruby 3.3 (3.3 made it sleep forever); under a
  # scheduler CRuby hands nil to the kernel_sleep hook, which cannot tell it from Mutex#sleep's
  # nil (forever), so the check is made here.
  module SleepNilArgument
    private

    def sleep(*args)
      if args.size == 1 && args[0].nil? && Fiber.scheduler.is_a?(Scheduler) && !Fiber.current.blocking?
        ::Kernel.raise TypeError, "can't convert NilClass into time interval"
      end

      super
    end
  end

  CoreExt.declare(
    Kernel, SleepNilArgument, methods: %i[sleep], at: :first_scheduler, ruby: "< 3.3",
    in_place: :while_a_scheduler_is_open, why: "sleep(nil) raises TypeError before Ruby 3.3, as without a scheduler"
  )

  # Polyphony style: the structured-concurrency calls as private Kernel methods (global
  # functions): spin, supervise, receive, receive_all_pending, move_on_after, cancel_after,
  # run, every, after, spin_loop, throttled_loop, breakpoint.
  module GlobalFunctions
    private

    def spin(*args, **options, &block) = UringMachine.spin(*args, **options, &block)
    def supervise(*fibers, **options, &block) = UringMachine.supervise(*fibers, **options, &block)
    def receive(&selector) = UringMachine.receive(&selector)
    def receive_all_pending = UringMachine.receive_all_pending
    def move_on_after(seconds, **options, &block) = UringMachine.move_on_after(seconds, **options, &block)
    def cancel_after(seconds, **options, &block) = UringMachine.cancel_after(seconds, **options, &block)
    def run(*args, &block) = UringMachine.run(*args, &block)
    def every(interval, &block) = UringMachine.every(interval, &block)
    def after(delay, &block) = UringMachine.after(delay, &block)
    def spin_loop(*args, **options, &block) = UringMachine.spin_loop(*args, **options, &block)
    def throttled_loop(rate = nil, **options, &block) = UringMachine.throttled_loop(rate, **options, &block)

    def breakpoint
      require_relative "../debugger"
      UringMachine::Debugger.breakpoint(caller_locations(1, 1).first)
    end
  end

  CoreExt.declare(
    Kernel, GlobalFunctions,
    methods: %i[spin supervise receive receive_all_pending move_on_after cancel_after run every after spin_loop
                throttled_loop breakpoint],
    at: :require_global, why: "opt-in global functions, Polyphony style"
  )
end
