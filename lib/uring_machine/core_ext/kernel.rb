# frozen_string_literal: true

# What the gem changes in Kernel, only on `require "uring_machine/global"` (see core_ext.rb).

module UringMachine
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
