# frozen_string_literal: true

# UringMachine.spin, and the stop of a finishing fiber's children.

module UringMachine
  # spin(*args) { |*args| } → a new fiber, a child of the current one, running the block. Under
  # a UringMachine::Scheduler it starts at once (like Fiber.schedule, and run/close wait for
  # it); with the Machine API alone, at the current fiber's next switch. Unlike a fiber that
  # Fiber.schedule started, it is stopped (UringMachine::Stop, its ensure blocks run) if its
  # parent finishes first. on_thread: a thread started with UringMachine.worker_thread runs it
  # instead (see threads.rb).
  def self.spin(*args, on_thread: nil, &block)
    raise ArgumentError, "spin needs a block" unless block
    return spin_on_thread(on_thread, args, block) if on_thread && !on_thread.equal?(Thread.current)

    scheduler = Fiber.scheduler
    if scheduler.is_a?(Scheduler)
      scheduler.spin(*args, &block)
    else
      current_machine.spin(*args, &block)
    end
  end

  # Stops the fibers that +fiber+ spun and that still run, and waits for those of this thread
  # to finish; the first failure one of them ends with is raised. Called as a fiber finishes.
  def self.__stop_children__(fiber)
    children = __spun_children_of__(fiber)
    children.each(&:stop)
    failures = children.filter_map do |child|
      next unless machine_of(child)

      child.join
      nil
    rescue StandardError => e
      e
    end
    raise failures.first unless failures.empty?
  end
end
