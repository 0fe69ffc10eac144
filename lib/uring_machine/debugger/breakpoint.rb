# frozen_string_literal: true

# UringMachine.breakpoint: the debugger's entry point, loaded with the gem.

module UringMachine
  # Stops the current fiber at the next line of the code that called it and opens the debugger
  # (see ../debugger.rb, loaded on first use so that `require "uring_machine"` stays cheap).
  # Without a terminal (stdin is not a tty) it prints where it is and goes on.
  def self.breakpoint
    require_relative "../debugger"
    Debugger.breakpoint(caller_locations(1, 1).first)
  end
end
