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
