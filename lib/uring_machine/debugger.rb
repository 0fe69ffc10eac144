# frozen_string_literal: true

# UringMachine::Debugger, the fiber-aware debugger, loaded by the first breakpoint; its parts are
# in debugger/.

require_relative "../uring_machine"
require_relative "debugger/source_view"
require_relative "debugger/commands"
require_relative "debugger/fiber_list"
require_relative "debugger/tracer"
require_relative "debugger/controller"

module UringMachine
  # The fiber-aware debugger: `breakpoint` (UringMachine.breakpoint, or Kernel#breakpoint
  # after `require "uring_machine/global"`) stops the current fiber and opens a prompt.
  module Debugger
    @tracer = nil
    @controller = nil

    class << self
      attr_reader :tracer, :controller

      # Uses +controller+ (a Controller) from now on, e.g. one fed through its mailbox.
      def attach(controller)
        @controller&.stop
        @controller = controller
        @tracer = Tracer.new(controller)
      end

      # Stops tracing and the controller's thread (tests; a program just ends).
      def detach
        @tracer&.send(:go, :off)
        @controller&.stop
        @tracer = @controller = nil
      end

      # Stops the current fiber at its next line (+location+ is the breakpoint call's).
      def breakpoint(location)
        unless @controller || $stdin.tty?
          $stderr.write("breakpoint at #{location.path}:#{location.lineno} (no terminal: going on)\n",
                        SourceView.render(location.path, location.lineno))
          return nil
        end
        attach(Controller.new) unless @controller
        @tracer.break_in(Fiber.current)
        nil
      end
    end
  end

  # The debugger's state, for programs and tests.
  module Trace
    @fiber_lock = true
    @pause_timers = true

    class << self
      # Whether the other fibers are held while the prompt is up (true by default).
      attr_accessor :fiber_lock
      # Whether the machine's timers are paused while the prompt is up (true by default).
      attr_accessor :pause_timers

      # :off, :step, :next, :finish or :stopped.
      def state
        Debugger.tracer&.state || :off
      end

      # The fiber being traced (the stopped one while stopped), or nil.
      def current_fiber
        Debugger.tracer&.fiber
      end

      # The stopped fiber's call stack at the last stop, innermost first (Strings).
      def call_stack
        Debugger.tracer&.call_stack || []
      end
    end
  end
end
