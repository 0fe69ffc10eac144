# frozen_string_literal: true

# UringMachine.worker_thread and spin(on_thread:): fibers started on another thread.

module UringMachine
  # A thread whose fibers other threads may start with spin(on_thread: thread), to spread
  # work (connections, jobs) over cores' worth of threads. It runs a UringMachine::Scheduler,
  # so the fibers use ordinary Ruby I/O; it runs until its main fiber is stopped
  # (thread.main_fiber.stop) or killed, its fibers finishing (or stopped) first.
  def self.worker_thread(name: nil)
    raise TypeError, "a thread's name must be a String, not #{name.class}" unless name.nil? || name.is_a?(String)

    ready = Thread::Queue.new
    thread = Thread.new do
      Thread.current.name = name if name
      Fiber.set_scheduler(Scheduler.new)
      serve_spins(ready)
    ensure
      ready.close # a thread that failed before it was ready: the caller joins it
    end
    thread.join unless ready.pop
    thread
  end

  # The loop of a worker thread's main fiber: starts each fiber another thread asks for.
  def self.serve_spins(ready)
    me = Fiber.current
    __set_home__(me, current_machine) # other threads find the machine it waits on
    Thread.current.thread_variable_set(:uring_machine_main_fiber, me)
    Thread.current.thread_variable_set(:uring_machine_spins, me)
    ready << true
    loop do
      _, token, block, args, parent, name, isolated = receive { |message| message.is_a?(Array) && message[0] == :uring_machine_spin }
      fiber = spin(*args, name: name, isolated: isolated, &block)
      __adopt__(parent, fiber, true)
      parent << [:uring_machine_spun, token, fiber]
    end
  rescue Stop
    nil # stopped on purpose: the thread ends
  ensure
    Thread.current.thread_variable_set(:uring_machine_spins, nil)
  end
  private_class_method :serve_spins

  # spin(on_thread:): asks the thread to start the fiber, and waits for it to say which.
  def self.spin_on_thread(thread, args, block, name:, isolated:)
    raise TypeError, "on_thread must be a Thread, not #{thread.class}" unless thread.is_a?(Thread)

    server = thread.thread_variable_get(:uring_machine_spins)
    unless server
      raise ArgumentError, "#{thread.inspect} has ended" unless thread.alive?
      raise ArgumentError, "#{thread.inspect} runs no fibers for other threads: start it with UringMachine.worker_thread"
    end

    caller = Fiber.current
    __set_home__(caller, current_machine) unless machine_of(caller) # its failures find it here
    token = Object.new
    server << [:uring_machine_spin, token, block, args, caller, name, isolated]
    receive { |message| message.is_a?(Array) && message[0] == :uring_machine_spun && message[1].equal?(token) }[2]
  end
  private_class_method :spin_on_thread
end
