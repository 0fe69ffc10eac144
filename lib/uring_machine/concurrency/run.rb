# frozen_string_literal: true

# UringMachine.run: a UringMachine::Scheduler for the length of a block.

module UringMachine
  # Runs the block under a new UringMachine::Scheduler on the current thread and returns its
  # value; the scheduler is closed (and the thread left without one) when it ends. The block
  # runs in a fiber of its own, a child of the caller, so that everything works in it as in
  # any spun fiber (deadlines included). When the block ends or fails, the fibers it spun that
  # still run are stopped (their ensure blocks run); those Fiber.schedule started run to their
  # end, as the Fiber::Scheduler contract wants. The block's failure is raised here. With a
  # scheduler already set on the thread, run only calls the block.
  def self.run(*args, &block)
    raise ArgumentError, "run needs a block" unless block
    return yield(*args) if Fiber.scheduler

    Fiber.set_scheduler(Scheduler.new)
    begin
      body = spin(*args, &block)
      body.join
    ensure
      body&.stop # left by an exception from elsewhere (a signal, Thread#raise): not orphaned
      Fiber.set_scheduler(nil) # runs what Fiber.schedule started; stops all if an exception propagates
    end
  end
end
