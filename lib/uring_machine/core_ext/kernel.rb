# frozen_string_literal: true

# What the gem changes in Kernel, only on `require "uring_machine/global"` (see core_ext.rb).

module UringMachine
  # Polyphony style: the structured-concurrency calls as private Kernel methods (global
  # functions): spin, supervise, receive, receive_all_pending, move_on_after, cancel_after,
  # breakpoint.
  module GlobalFunctions
    private

    def spin(*args, **options, &block) = UringMachine.spin(*args, **options, &block)
    def supervise(*fibers, **options, &block) = UringMachine.supervise(*fibers, **options, &block)
    def receive(&selector) = UringMachine.receive(&selector)
    def receive_all_pending = UringMachine.receive_all_pending
    def move_on_after(seconds, **options, &block) = UringMachine.move_on_after(seconds, **options, &block)
    def cancel_after(seconds, **options, &block) = UringMachine.cancel_after(seconds, **options, &block)

    def breakpoint
      require_relative "../debugger"
      UringMachine::Debugger.breakpoint(caller_locations(1, 1).first)
    end
  end

  CoreExt.declare(
    Kernel, GlobalFunctions,
    methods: %i[spin supervise receive receive_all_pending move_on_after cancel_after breakpoint],
    at: :require_global, why: "opt-in global functions, Polyphony style"
  )
end
