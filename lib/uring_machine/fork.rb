# frozen_string_literal: true

module UringMachine
  # A forked child shares the parent's ring (its fd and SQ/CQ memory) and must never submit to
  # it. Process._fork is what fork, Kernel#fork and IO.popen("-") all go through (Ruby 3.1+);
  # in the child it resets this thread: UringMachine.machine becomes a fresh ring, and the
  # child starts without a scheduler, as on Ruby 4.0 (which detaches it itself). Then the
  # forking thread's scheduler, if it is ours, may give the child a fresh one (#process_fork),
  # and the UringMachine.after_fork hooks run.
  #
  # Ruby 3.1-3.4 offer no way to mark the fiber that forked (the child's root fiber now) as
  # blocking, as 4.0 does: without a scheduler that changes nothing; under a new one, that
  # fiber's I/O goes through the scheduler too.
  module ForkReset
    def _fork
      scheduler = Fiber.scheduler
      pid = super
      UringMachine.__send__(:reset_after_fork, scheduler) if pid.zero?
      pid
    end
  end

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

  ::Process.singleton_class.prepend(ForkReset)
end
