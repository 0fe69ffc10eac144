# frozen_string_literal: true

module UringMachine
  # A forked child shares the parent's ring memory and must never submit to it. As Ruby 4.0
  # does, the child starts without a scheduler, and UringMachine.machine gives it a fresh ring.
  # Process._fork is what fork, Kernel#fork and IO.popen("-") all go through (Ruby 3.1+).
  module ForkReset
    def _fork
      pid = super
      UringMachine.reset_after_fork if pid.zero?
      pid
    end
  end

  def self.reset_after_fork
    Thread.current.thread_variable_set(:uring_machine, nil)
    Fiber.set_scheduler(nil) if Fiber.scheduler.is_a?(Scheduler) # its close returns at once in a child
  end

  ::Process.singleton_class.prepend(ForkReset)
end
