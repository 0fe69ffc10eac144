# frozen_string_literal: true

# UringMachine::Sidekiq::SafeFibers, prepended to Sidekiq::Util: Sidekiq's threads become fibers
# under our scheduler (see sidekiq.rb for when it is installed).

module UringMachine
  module Sidekiq
    # Sidekiq::Util#safe_thread starts every thread Sidekiq runs (each processor, the
    # heartbeat, the scheduled-job poller). Called in a fiber under a UringMachine::Scheduler,
    # it starts a fiber instead (a FiberThread); elsewhere (a thread without our scheduler, or
    # the blocking root fiber, whose waits would hold up every fiber) a thread, as always.
    module SafeFibers
      def safe_thread(name, &block)
        return super unless Fiber.scheduler.is_a?(UringMachine::Scheduler) && !Fiber.current.blocking?

        FiberThread.new(name) do
          watchdog(name) do
            block.call
          rescue UringMachine::Stop => e
            e.value # the fiber that started Sidekiq finished: it ends quietly, as a thread at exit
          end
        rescue ::Sidekiq::Shutdown
          # A hard shutdown that reached it outside Sidekiq's own rescue (logged by watchdog)
          # ends it, as it ends a thread. An Interrupt, it would otherwise leave the fiber as
          # a signal does, for the main fiber, and end the program.
          nil
        end
      end
    end

    CoreExt.declare(
      ::Sidekiq::Util, SafeFibers, methods: %i[safe_thread], at: :require_sidekiq,
      why: "Sidekiq's processors, heartbeat and poller are fibers when started under our scheduler"
    )
  end
end
