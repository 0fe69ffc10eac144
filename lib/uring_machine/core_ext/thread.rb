# frozen_string_literal: true

# What the gem changes in Thread (see core_ext.rb for how and when it is installed).

module UringMachine
  # Threads in the fiber tree, and the fiber lock (worker threads are in
  # concurrency/threads.rb).
  module ThreadFibers
    # The thread's main fiber: the one UringMachine.worker_thread runs, or for the current
    # thread, the fiber that first asked (nil for another thread that never said).
    def main_fiber
      fiber = thread_variable_get(:uring_machine_main_fiber)
      return fiber if fiber || !equal?(Thread.current)

      fiber = Fiber.current
      fiber = fiber.parent while UringMachine.machine_of(fiber) && fiber.parent
      thread_variable_set(:uring_machine_main_fiber, fiber)
    end

    # Makes this thread's main fiber a child of +fiber+: stopped when +fiber+ finishes, its
    # failures raised in +fiber+. Threads nobody attaches stay independent.
    def parent_fiber=(fiber)
      main = main_fiber
      ::Kernel.raise ArgumentError, "#{inspect} has no known main fiber" unless main

      fiber.add_child_fiber(main)
    end

    # Runs the block while no other fiber of this thread runs: their wake-ups and completions
    # wait until it returns (or raises). Nestable. Only for the current thread.
    def fiber_lock
      ::Kernel.raise ThreadError, "fiber_lock is only for the current thread" unless equal?(Thread.current)

      machine = UringMachine.current_machine
      previous = machine.__lock_fibers__(Fiber.current)
      begin
        yield
      ensure
        machine.__lock_fibers__(previous)
      end
    end
  end

  # What Scheduler#block raises on Ruby 3.1 when a Thread#join(limit) timed out.
  class JoinTimedOut < Exception # rubocop:disable Lint/InheritException
  end

  # Thread#join(limit) gives nil when the limit passed. Under a scheduler Ruby 3.1 calls the
  # block hook again each time it times out, so join never would: the hook raises
  # JoinTimedOut there instead (for a Thread it blocks on), which becomes join's nil.
  module ThreadJoinLimit
    def join(*limit)
      super
    rescue JoinTimedOut
      nil
    end
  end

  CoreExt.declare(
    Thread, ThreadJoinLimit, methods: %i[join], at: :first_scheduler, ruby: "3.1",
    in_place: :while_a_scheduler_is_open, why: "Thread#join(limit) gives nil when the limit passed, as without a scheduler"
  )

  # ConditionVariable#wait(mutex, timeout) answers nil when the time ran out, as without a
  # scheduler: with one, CRuby's Mutex#sleep drops the kernel_sleep hook's answer and always
  # gives the seconds slept.
  module ConditionVariableTimeout
    def wait(mutex, timeout = nil)
      woken = super
      return woken if timeout.nil?

      scheduler = Fiber.scheduler
      scheduler.is_a?(Scheduler) && scheduler.__sleep_timed_out__ ? nil : woken
    end
  end

  # Thread#raise into another thread: the exception is marked, so that where that thread's
  # fibers wait under a UringMachine::Scheduler it is raised in the fiber whose wait it
  # interrupts, as without a scheduler, even an Interrupt or a SignalException (which a real
  # signal sends to the main fiber instead). The exception is made here as Kernel#raise makes
  # it (its backtrace is then the target's, set where it is raised).
  module ThreadRaise
    def raise(*args, **options)
      return super if equal?(Thread.current) || (args.empty? && options.empty?)

      had_backtrace = args.size >= 3 || (args[0].is_a?(Exception) && args[0].backtrace)
      exception = begin
        ::Kernel.raise(*args, **options)
      rescue Exception => e # rubocop:disable Lint/RescueException
        e
      end
      exception.set_backtrace(nil) unless had_backtrace || exception.frozen?
      super(UringMachine.__raised_by_thread__(exception))
    end
  end

  CoreExt.declare(
    Thread, ThreadRaise, methods: %i[raise], at: :first_scheduler, in_place: :while_a_scheduler_is_open,
    why: "what Thread#raise sends another thread is raised where that thread's fiber waits, not taken for a signal"
  )
  CoreExt.declare(
    Thread::ConditionVariable, ConditionVariableTimeout, methods: %i[wait], at: :first_scheduler,
    in_place: :while_a_scheduler_is_open,
    why: "ConditionVariable#wait with a timeout gives nil when it ran out, as without a scheduler"
  )
  CoreExt.declare(
    Thread, ThreadFibers, methods: %i[main_fiber parent_fiber= fiber_lock], at: :gem_load,
    why: "threads in the fiber tree, and the fiber lock"
  )
  CoreExt.declare(
    Thread, nil, name: "thread-end hook", methods: [], mechanism: :event_hook, at: :gem_load,
    source: "ext/uring_machine/src/machine/thread_end.rs",
    why: "closes a thread's machine (its ring) when the thread ends, not when GC frees it"
  )
end
