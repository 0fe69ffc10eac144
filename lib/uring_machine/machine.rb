# frozen_string_literal: true

# The Ruby half of UringMachine::Machine (the rest is Rust: ext/uring_machine/src/machine/ and
# ops/), and UringMachine.machine, the thread's own.

module UringMachine
  # Ruby-side sugar over the Rust Machine: fiber creation and failure reporting.
  class Machine
    include FiberBody

    # Creates a non-blocking fiber running the block with +args+ and schedules it to start at
    # the next switch (snooze, sleep, any I/O that waits). Returns the fiber; +join+ it for its
    # value. An exception that escapes it and that no +join+ receives is raised in the fiber
    # that spun it.
    # name: and isolated: as for UringMachine.spin.
    def spin(*args, name: nil, isolated: false, &block)
      raise ArgumentError, "spin needs a block" unless block

      __spin_block__(block, args, UringMachine.__fiber_name__(name), isolated)
    end

    # spin, with what UringMachine.spin checked passed as it is: no keyword Hash per fiber.
    def __spin_block__(block, args, name, isolated)
      fiber = Fiber.new(&__fiber_body__)
      UringMachine.__prepare_fiber__(fiber, block, args, name, isolated)
      __spin__(fiber)
    end

    private

    # A spun fiber failed, nobody was joining it and no fiber it descends from is alive: say
    # so, like Thread#report_on_exception.
    def report_fiber_error(fiber, error)
      $stderr.puts "#{fiber.inspect} terminated with exception (report_on_exception is true):"
      $stderr.puts error.full_message(highlight: false)
    end
  end

  # Every live thread's machine (UringMachine.machine, the one its scheduler uses), for export
  # to a metrics system: one Hash per machine, its Machine#metrics and the thread it runs on.
  # Read from any thread: the GVL keeps each machine's counters still while they are copied.
  def self.stats
    Thread.list.filter_map do |thread|
      machine = thread.thread_variable_get(:uring_machine)
      { thread: thread, **machine.metrics } if machine
    end
  end

  # The current thread's machine, created on first use.
  def self.machine
    Thread.current.thread_variable_get(:uring_machine) ||
      Thread.current.thread_variable_set(:uring_machine, Machine.new)
  end
end
