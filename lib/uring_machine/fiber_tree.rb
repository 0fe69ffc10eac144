# frozen_string_literal: true

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

# The fiber tree, for every fiber: who started whom, and what a parent can do with a child.
class Fiber
  # The fiber that started this one (spin, Fiber.schedule), or that adopted it; nil for others.
  def parent
    UringMachine.parent_of(self)
  end

  # The living fibers this one started or adopted, oldest first.
  def children
    UringMachine.children_of(self)
  end

  # Waits for this fiber to finish and returns its value; re-raises the exception it failed
  # with. Works from any fiber of any thread for a fiber that spin or Fiber.schedule started.
  def join
    ::Kernel.raise ArgumentError, "only a fiber that spin or Fiber.schedule started can be joined" unless UringMachine.machine_of(self)

    UringMachine.current_machine.join(self)
  end
  alias await join

  # Ends this fiber: UringMachine::Stop is raised in it, breaking out of whatever it waits on;
  # its ensure blocks run, and join returns +value+. From any thread. Returns self.
  def stop(value = nil)
    stop = UringMachine::Stop.new("stopped", value)
    ::Kernel.raise stop if equal?(Fiber.current)
    return self unless alive?

    machine = UringMachine.machine_of(self)
    if machine
      machine.schedule(self, stop)
    else
      UringMachine.emit_signal_exception(stop, self) # a thread's main fiber
    end
    self
  end

  # Starts a fiber that runs the same block with the same arguments, under the same parent,
  # after stopping this one if it still runs (waiting for it). Returns the new fiber.
  def restart
    body = UringMachine.__body_of__(self)
    ::Kernel.raise ArgumentError, "only a fiber that spin started can be restarted" unless body
    ::Kernel.raise ArgumentError, "a fiber cannot restart itself" if equal?(Fiber.current)

    if alive?
      stop
      join
    end
    block, args = body
    fiber = UringMachine.spin(*args, &block)
    UringMachine.__adopt__(parent, fiber, true) if parent
    fiber
  end

  # Makes +fiber+ a child of this fiber: it is stopped when this one finishes, and its failure
  # is raised here. For a thread's main fiber (Thread#main_fiber), this ties the thread's life
  # to this fiber (see Thread#parent_fiber=).
  def add_child_fiber(fiber)
    UringMachine.__adopt__(self, fiber, true)
    self
  end
end
