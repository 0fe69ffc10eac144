# frozen_string_literal: true

# UringMachine::Sidekiq::FiberThread: what Sidekiq's safe_thread gives under our scheduler, a
# fiber that Sidekiq drives with the few Thread methods it calls on its threads.

module UringMachine
  module Sidekiq
    # A fiber standing in for one of Sidekiq's threads (a processor, the heartbeat, the
    # scheduled-job poller), named "sidekiq <name>" (print_tree, the debugger). Sidekiq calls
    # #raise (Manager#hard_shutdown, through Processor#kill) and #value (Poller#terminate) on it.
    #
    # Like a thread, it is independent of the fiber that started it: its parent is the fiber
    # that started the first of Sidekiq's (Launcher#run's caller), never another of these (a
    # processor that dies starts its replacement, which must outlive it). It is stopped, its
    # ensure blocks run, when that fiber finishes, as a thread is when the program exits; a
    # failure that escapes it is reported, not raised in its parent (isolated), as a thread's
    # is printed.
    class FiberThread
      OWNER = :uring_machine_sidekiq_owner
      private_constant :OWNER

      def initialize(name, &block)
        owner = Thread.current[OWNER] || Fiber.current
        # Queued, not run at once: like Thread.new, it starts once its starter waits, so that
        # Sidekiq's own loops that start threads (Manager#start iterates the workers a dying
        # processor replaces itself in) run to their end first
        @fiber = Fiber.scheduler.__spin_queued__(name: -"sidekiq #{name}", isolated: true) do
          Thread.current[OWNER] = owner
          # Sidekiq's tid (logs, the busy workers it reports) is kept fiber-local under this key
          # but made from the thread: each fiber gets its own
          Thread.current["sidekiq_tid"] = (Fiber.current.object_id ^ ::Process.pid).to_s(36)
          block.call
        end
        owner.add_child_fiber(@fiber) unless owner.equal?(Fiber.current)
      end

      # Raises +exception+ (an exception class or instance, with an optional message) in the
      # fiber, breaking out of whatever it waits on. Returns nil, as Thread#raise does.
      def raise(exception = RuntimeError, message = nil)
        unless exception.respond_to?(:exception)
          ::Kernel.raise TypeError, "exception class/object expected, not #{exception.inspect}"
        end

        error = message ? exception.exception(message) : exception.exception
        UringMachine.machine_of(@fiber)&.schedule(@fiber, error) if @fiber.alive?
        nil
      end

      # Waits for the fiber to finish and returns its value (re-raises its failure).
      def value
        @fiber.join
      end
    end
  end
end
