# frozen_string_literal: true

# UringMachine.after_fork and remove_after_fork, and the reset a forked child starts with.

module UringMachine
  # What a forked child does first: ForkReset, prepended to Process._fork (core_ext/process.rb),
  # calls reset_after_fork in the child, which resets the thread and runs the after_fork hooks.
  @after_fork_hooks = []

  class << self
    # Registers a block to run in every forked child, after the reset, with the scheduler the
    # forking thread had (nil if none): the place to start a fresh scheduler or reconnect.
    # Returns the block (for remove_after_fork).
    def after_fork(&hook)
      raise ArgumentError, "after_fork needs a block" unless hook

      @after_fork_hooks << hook
      hook
    end

    # Unregisters a block given to after_fork; returns it, or nil if it was not registered.
    def remove_after_fork(hook)
      @after_fork_hooks.delete(hook)
    end

    private

    def reset_after_fork(scheduler)
      Thread.current.thread_variable_set(:uring_machine, nil)
      if scheduler.is_a?(Scheduler)
        # Ruby < 4.0 kept it; its close returns at once in a child (nothing of the parent runs).
        Fiber.set_scheduler(nil) if Fiber.scheduler.equal?(scheduler)
        replacement = scheduler.process_fork
        Fiber.set_scheduler(replacement) if replacement
      end
      @after_fork_hooks.each { |hook| hook.call(scheduler) }
    end
  end
end
