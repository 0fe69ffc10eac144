# frozen_string_literal: true

# What the gem changes in Process (see core_ext.rb for how and when it is installed).

module UringMachine
  # A forked child shares the parent's ring (its fd and SQ/CQ memory) and must never submit to
  # it. Process._fork is what fork, Kernel#fork and IO.popen("-") all go through (Ruby 3.1+);
  # in the child it resets this thread: UringMachine.machine becomes a fresh ring, and the
  # child starts without a scheduler, as on Ruby 4.0 (which detaches it itself). Then the
  # forking thread's scheduler, if it is ours, may give the child a fresh one (#process_fork),
  # and the UringMachine.after_fork hooks run (scheduler/fork.rb).
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

  CoreExt.declare(
    ::Process, ForkReset, singleton: true, methods: %i[_fork], at: :gem_load,
    why: "a forked child gets a fresh ring (it must never submit to the parent's) and no scheduler"
  )
end
