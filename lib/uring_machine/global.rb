# frozen_string_literal: true

# Opt-in, Polyphony style: `require "uring_machine/global"` makes the structured-concurrency
# calls global functions (spin, supervise, receive, move_on_after, cancel_after, breakpoint):
# UringMachine::GlobalFunctions, prepended to Kernel (core_ext/kernel.rb).

require_relative "../uring_machine"

UringMachine::CoreExt.install(:require_global)
