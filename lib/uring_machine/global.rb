# frozen_string_literal: true

require_relative "../uring_machine"

# Opt-in, Polyphony style: `require "uring_machine/global"` makes the structured-concurrency
# calls global functions (spin, supervise, receive, move_on_after, cancel_after, breakpoint).
module Kernel
  private

  def spin(*args, **options, &block) = UringMachine.spin(*args, **options, &block)
  def supervise(*fibers, **options, &block) = UringMachine.supervise(*fibers, **options, &block)
  def receive(&selector) = UringMachine.receive(&selector)
  def receive_all_pending = UringMachine.receive_all_pending
  def move_on_after(seconds, **options, &block) = UringMachine.move_on_after(seconds, **options, &block)
  def cancel_after(seconds, **options, &block) = UringMachine.cancel_after(seconds, **options, &block)

  def breakpoint
    require_relative "debugger"
    UringMachine::Debugger.breakpoint(caller_locations(1, 1).first)
  end
end
