# frozen_string_literal: true

# UringMachine::Debugger::Tracer: the TracePoint that follows one fiber and stops it.

module UringMachine
  module Debugger
    # The tracer: a TracePoint that follows one fiber at a time (fiber-modal) and holds the
    # state: :off, :step, :next, :finish (running toward the next stop) or :stopped. When it
    # stops it holds the other fibers (Thread#fiber_lock), pauses the machine's timers, tells
    # the controller through its mailbox and carries out the commands that come back.
    class Tracer
      EVENTS = %i[line return b_return].freeze
      RETURNS = %i[return b_return].freeze
      # The Ruby layer of uring_machine itself (spin, join, the debugger...) is never stopped in.
      INTERNAL = File.expand_path("..", __dir__)

      attr_reader :state, :fiber, :call_stack, :location, :stops

      def initialize(controller)
        @controller = controller
        @state = :off
        @fiber = nil
        @depth = nil
        @call_stack = []
        @location = nil
        @stops = []
        @trace = TracePoint.new(*EVENTS) { |tp| on_event(tp) }
      end

      # Starts tracing +fiber+: it stops at its next line outside uring_machine's own code.
      def break_in(fiber)
        @fiber = fiber
        go(:step)
      end

      private

      def on_event(tp)
        return unless Fiber.current.equal?(@fiber)
        return if internal?(tp.path)

        depth = frame_depth
        stop(tp, depth) if stop_here?(tp.event, depth)
      end

      def stop_here?(event, depth)
        case @state
        when :step then event == :line
        when :next then depth <= @depth && (event == :line || RETURNS.include?(event))
        when :finish then depth <= @depth && RETURNS.include?(event)
        else false
        end
      end

      def internal?(path)
        path.start_with?(INTERNAL, "<internal:")
      end

      # Frames on the current fiber's stack; always measured from the same place (on_event's
      # callee), so only differences matter.
      def frame_depth
        caller_locations.size
      end

      def go(state)
        @state = state
        if state == :off
          @trace.disable
        else
          @trace.enable unless @trace.enabled?
        end
      end

      def stop(tp, depth)
        @state = :stopped
        @depth = depth
        @binding = tp.binding
        @location = [tp.path, tp.lineno]
        @call_stack = caller_locations.reject { |l| internal?(l.path.to_s) }.map(&:to_s)
        @stops << [tp.path, tp.lineno, Fiber.current, tp.event]
        returning = RETURNS.include?(tp.event) ? tp.return_value : nil
        held do
          @controller.stopped(Fiber.current, banner(tp.event, returning))
          converse
        end
      end

      # Runs the block with the other fibers held and the machine's timers paused, as set.
      def held(&block)
        machine = UringMachine.current_machine
        paused = Trace.pause_timers && machine.__pause_timers__ && true
        if Trace.fiber_lock
          Thread.current.fiber_lock(&block)
        else
          yield
        end
      ensure
        machine.__resume_timers__ if paused
      end

      def banner(event, returning)
        path, line = @location
        head = "[#{File.basename(path)}:#{line}] #{where_label}"
        head += " returning #{safe_inspect(returning)}" if RETURNS.include?(event)
        "#{head}\n#{SourceView.render(path, line)}"
      end

      def where_label
        label = @call_stack.first.to_s[/in [`'](.*)'\z/, 1]
        "in #{label || "?"} (fiber 0x#{format("%x", Fiber.current.object_id)})"
      end

      # Takes commands from the controller until one lets the program go on.
      def converse
        loop do
          _, name, arg = UringMachine.receive { |m| m.is_a?(Array) && m[0] == :uring_machine_debugger_command }
          reply = run(name, arg)
          return @controller.resumed if reply.nil?

          @controller.output(reply)
        end
      end

      def run(name, arg)
        case name
        when :step, :next, :finish then go(name) && nil
        when :continue then go(:off) && nil
        when :switch then switch(arg)
        when :where then where
        when :fibers then fiber_list.render
        when :eval then evaluate(arg.to_s)
        else "unknown command #{name}\n"
        end
      end

      def where
        @call_stack.each_with_index.map { |l, i| format("%s#%d %s\n", i.zero? ? "=>" : "  ", i, l) }.join
      end

      def fiber_list
        FiberList.new(UringMachine.current_machine, stopped: Fiber.current, traced: @fiber)
      end

      # switch N: fiber N of the `fibers` list becomes the traced one (it stops at its next line).
      def switch(arg)
        list = fiber_list
        list.render
        index = Integer(arg.to_s, exception: false)
        target = index && index.positive? && list.fibers[index - 1]
        return "no fiber #{arg.inspect}: see `fibers` for the numbers\n" unless target&.alive?

        @fiber = target
        go(:step)
        nil
      end

      def evaluate(code)
        "=> #{safe_inspect(@binding.eval(code, "(debugger)", 1))}\n"
      rescue ScriptError, StandardError => e
        "#{e.class}: #{e.message}\n"
      end

      def safe_inspect(value)
        value.inspect
      rescue StandardError => e
        "#<#{value.class} (inspect failed: #{e.class})>"
      end
    end
  end
end
