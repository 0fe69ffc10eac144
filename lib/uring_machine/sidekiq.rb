# frozen_string_literal: true

# `require "uring_machine/sidekiq"`: Sidekiq 6.4's processors run as fibers of one thread under
# UringMachine::Scheduler, hundreds of them, with quiet, stop and hard shutdown as with threads.

# Sidekiq 6.4 reads $TESTING before anyone sets it (a warning under -w that is not ours to fix)
verbose = $VERBOSE
begin
  $VERBOSE = nil
  require "sidekiq"
  require "sidekiq/launcher"
ensure
  $VERBOSE = verbose
end

unless ::Sidekiq::VERSION.split(".").first(2) == %w[6 4]
  raise LoadError, "uring_machine/sidekiq is for Sidekiq 6.4, not #{::Sidekiq::VERSION}"
end

require_relative "../uring_machine"
require_relative "sidekiq/fiber_thread"
require_relative "sidekiq/safe_fibers"
# The sidekiq command loaded Sidekiq::CLI before the application that requires this file; a
# process that only pushes jobs has none (loading it would make Sidekiq.server? true).
require_relative "sidekiq/cli_launch" if defined?(::Sidekiq::CLI)

UringMachine::CoreExt.install(:require_sidekiq)
