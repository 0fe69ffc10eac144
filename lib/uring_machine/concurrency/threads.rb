# frozen_string_literal: true

# UringMachine.worker_thread and spin(on_thread:): fibers started on another thread that runs
# a machine.

module UringMachine
  # A thread that runs a UringMachine::Scheduler and waits in its loop until its main fiber is
  # stopped (thread.main_fiber.stop) or killed, its fibers finishing (or stopped) first: one
  # that other threads give fibers to with spin(on_thread: thread), to spread work
  # (connections, jobs) over cores' worth of threads.
  def self.worker_thread(name: nil)
    raise TypeError, "a thread's name must be a String, not #{name.class}" unless name.nil? || name.is_a?(String)

    ready = Thread::Queue.new
    thread = Thread.new do
      Thread.current.name = name if name
      Fiber.set_scheduler(Scheduler.new)
      wait_for_work(ready)
    ensure
      ready.close # a thread that failed before it was ready: the caller joins it
    end
    thread.join unless ready.pop
    thread
  end

  # Seconds that no clock reaches: Machine#sleep waits until an exception interrupts it.
  FOREVER = 2**62
  private_constant :FOREVER

  # The worker thread's main fiber: it sleeps in its machine, whose loop runs the thread's
  # fibers and starts those other threads ask for, until it is stopped.
  def self.wait_for_work(ready)
    me = Fiber.current
    machine = current_machine
    __set_home__(me, machine) # other threads find the machine it waits on
    Thread.current.thread_variable_set(:uring_machine_main_fiber, me)
    ready << true
    machine.sleep(FOREVER)
  rescue Stop
    nil # stopped on purpose: the thread ends
  end
  private_class_method :wait_for_work

  # spin(on_thread:): asks the thread's machine to start the fiber, and waits for it to say
  # which. The thread starts it the next time it waits in its machine (its scheduler's loop,
  # Machine#sleep, any I/O or receive in one of its fibers).
  def self.spin_on_thread(thread, args, block, name:, isolated:)
    raise TypeError, "on_thread must be a Thread, not #{thread.class}" unless thread.is_a?(Thread)
    raise ArgumentError, "#{thread.inspect} has ended" unless thread.alive?

    machine = thread.thread_variable_get(:uring_machine)
    unless machine
      raise ArgumentError, "#{thread.inspect} runs no UringMachine: nothing there would start the fiber " \
                           "(start it with UringMachine.worker_thread, or run a UringMachine::Scheduler or Machine in it)"
    end

    caller = Fiber.current
    __set_home__(caller, current_machine) unless machine_of(caller) # its failures find it here
    reply = Mailbox.new
    machine.__request_spin__([machine, block, args, caller, name, isolated, reply])
    status, value = reply.receive
    raise ArgumentError, "#{thread.inspect} ended before it started the fiber" unless status
    raise value if status == :failed

    value
  end
  private_class_method :spin_on_thread

  # Starts, on this thread, the fiber another thread asked for (called by the machine's loop,
  # see ext/uring_machine/src/machine/spin_requests.rs), and tells the requester which, or what
  # went wrong.
  def self.__serve_spin__(request)
    machine, block, args, parent, name, isolated, reply = request
    scheduler = Fiber.scheduler
    fiber = if scheduler.is_a?(Scheduler) && scheduler.machine.equal?(machine)
              scheduler.__spin_queued__(*args, name: name, isolated: isolated, &block)
            else
              machine.spin(*args, name: name, isolated: isolated, &block)
            end
    __adopt__(parent, fiber, true)
    reply.push([:spun, fiber])
  rescue Exception => e # rubocop:disable Lint/RescueException
    reply.push([:failed, e])
  end
end
