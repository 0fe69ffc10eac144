# frozen_string_literal: true

# UringMachine.spin, and the stop of a finishing fiber's children.

module UringMachine
  # spin(*args, name: nil, isolated: false) { |*args| } → a new fiber, a child of the current
  # one, running the block. Under a UringMachine::Scheduler it starts at once (like
  # Fiber.schedule, and run/close wait for it); with the Machine API alone, at the current
  # fiber's next switch. Unlike a fiber that Fiber.schedule started, it is stopped
  # (UringMachine::Stop, its ensure blocks run) if its parent finishes first. name: its
  # Fiber#name. isolated: true: a failure nobody joins is not raised in the parent but reported
  # (see isolation.rb), for the connections of an accept loop. on_thread: a thread that runs a
  # machine runs it instead (see threads.rb).
  def self.spin(*args, on_thread: nil, name: nil, isolated: false, &block)
    raise ArgumentError, "spin needs a block" unless block

    name = __fiber_name__(name)
    raise TypeError, "isolated must be true or false, not #{isolated.inspect}" unless isolated == true || isolated == false
    if on_thread && !on_thread.equal?(Thread.current)
      return spin_on_thread(on_thread, args, block, name: name, isolated: isolated)
    end

    scheduler = Fiber.scheduler
    (scheduler.is_a?(Scheduler) ? scheduler : current_machine).__spin_block__(block, args, name, isolated)
  end

  # A fiber's name as kept: nil, or a frozen String (from a String or a Symbol).
  def self.__fiber_name__(name)
    return nil if name.nil?
    raise TypeError, "a fiber's name must be a String or a Symbol, not #{name.class}" unless name.is_a?(String) || name.is_a?(Symbol)

    -name.to_s
  end

  # Records what +fiber+ runs, names it and marks it isolated, before it first runs; returns it.
  def self.__prepare_fiber__(fiber, block, args, name, isolated)
    __set_body__(fiber, block, args)
    __set_name__(fiber, name) if name
    __isolate__(fiber) if isolated
    fiber
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
