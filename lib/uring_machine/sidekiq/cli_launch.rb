# frozen_string_literal: true

# UringMachine::Sidekiq::CLILaunch, prepended to Sidekiq::CLI: the sidekiq command runs its
# launcher under our scheduler (see sidekiq.rb for when it is installed).

module UringMachine
  module Sidekiq
    # Sidekiq::CLI#launch starts the Launcher, then waits on its signal pipe (TERM, TSTP, TTIN
    # written there by its trap handlers) until TERM or INT stops the launcher and exits. Run in
    # a fiber under a UringMachine::Scheduler, the launcher's processors are fibers of this
    # thread, and the wait on the pipe is one fiber's wait among them.
    module CLILaunch
      def launch(self_read)
        UringMachine.run { super(self_read) }
      end
    end

    CoreExt.declare(
      ::Sidekiq::CLI, CLILaunch, methods: %i[launch], at: :require_sidekiq,
      why: "the sidekiq command runs its processors as fibers of one thread, under our scheduler"
    )
  end
end
