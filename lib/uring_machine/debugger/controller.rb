# frozen_string_literal: true

# UringMachine::Debugger::Controller: the thread that talks to the user.

module UringMachine
  module Debugger
    # The controller: its own thread, the one that talks to the user. The tracer tells it of
    # each stop ([:stopped, fiber, text] in its mailbox); it shows the text, prompts, reads a
    # command and sends it to the stopped fiber's mailbox; a reply ([:output, text]) is shown
    # and the prompt comes back, until a command lets the program go on.
    #
    # Input comes from a terminal (+input+, read in this thread), or, with input: :mailbox,
    # from [:input, line] messages sent to #fiber (for programs and tests driving it).
    class Controller
      PROMPT = "(um) "
      STOPPED = :uring_machine_debugger_stopped
      OUTPUT = :uring_machine_debugger_output
      INPUT = :uring_machine_debugger_input
      COMMAND = :uring_machine_debugger_command
      RESUMED = :uring_machine_debugger_resumed

      # Ctrl-C while the prompt is up (see with_prompt_interrupts).
      class PromptInterrupt < Exception; end # rubocop:disable Lint/InheritException
      private_constant :PromptInterrupt

      attr_reader :thread, :fiber

      # idle_timeout: with mailbox input, how long to wait for a line before continuing (so a
      # test that ran out of commands never hangs).
      def initialize(input: $stdin, output: $stdout, idle_timeout: 10)
        @input = input
        @output = output
        @idle_timeout = idle_timeout
        ready = Thread::Queue.new
        @thread = Thread.new do
          Thread.current.name = "uring_machine debugger"
          Thread.current.report_on_exception = false
          @fiber = Fiber.current
          ready << true
          run
        end
        ready.pop
      end

      # Sends a line of input, as if typed (input: :mailbox).
      def feed(*lines)
        lines.each { |line| @fiber << [INPUT, line] }
        self
      end

      # Called by the tracer, from the stopped fiber.
      def stopped(fiber, text)
        @fiber << [STOPPED, fiber, text]
      end

      # Called by the tracer: the answer to a command.
      def output(text)
        @fiber << [OUTPUT, text]
      end

      # Called by the tracer: the program goes on.
      def resumed
        @fiber << [RESUMED]
      end

      def stop
        @thread.kill
        @thread.join
      end

      private

      def run
        loop do
          _, fiber, text = UringMachine.receive { |m| m.is_a?(Array) && m[0] == STOPPED }
          write(text)
          converse(fiber)
        end
      end

      def converse(fiber)
        with_prompt_interrupts do
          loop do
            # A Ctrl-C is taken only here: one that comes while the last is handled waits.
            Thread.handle_interrupt(PromptInterrupt => :immediate) do
              write(PROMPT)
              name, arg = Commands.parse(read_line)
              case name
              when :nothing then next
              when :help then write(Commands::HELP)
              else
                return if run_command(fiber, name, arg) == RESUMED
              end
            end
          rescue PromptInterrupt
            write("\n") # Ctrl-C at the prompt: the prompt again
          end
        end
      end

      # Sends a command to the stopped fiber and shows its answer; RESUMED when it let the
      # program go on.
      def run_command(fiber, name, arg)
        @running_command = true
        fiber << [COMMAND, name, arg]
        kind, text = UringMachine.receive { |m| m.is_a?(Array) && (m[0] == OUTPUT || m[0] == RESUMED) }
        @running_command = false
        kind == RESUMED ? kind : write(text)
      end

      # Ctrl-C while the prompt is up: the prompt again (as in irb), not an Interrupt that ends
      # the program through the debugger's internals. While a command runs (an eval), it
      # interrupts the program as usual. Terminal input only.
      def with_prompt_interrupts
        return yield if @input == :mailbox

        controller = Thread.current
        @running_command = false
        previous = Signal.trap("INT") do
          @running_command ? Thread.main.raise(Interrupt) : controller.raise(PromptInterrupt, "Ctrl-C at the prompt")
        end
        begin
          Thread.handle_interrupt(PromptInterrupt => :never) { yield }
        ensure
          Signal.trap("INT", previous || "DEFAULT")
        end
      end

      def read_line
        line = if @input == :mailbox
                 UringMachine.move_on_after(@idle_timeout) do
                   UringMachine.receive { |m| m.is_a?(Array) && m[0] == INPUT }[1]
                 end
               else
                 @input.gets
               end
        write("#{line.chomp}\n") if line && @input == :mailbox # as a terminal would echo it
        write("\n") if line.nil?
        line
      end

      def write(text)
        @output.write(text)
        @output.flush
      end
    end
  end
end
