# frozen_string_literal: true

# UringMachine::DeadlockError: what the main fiber gets when every fiber of its thread waits
# for something nothing can bring (see ext/uring_machine/src/machine/deadlock.rs).

module UringMachine
  # Raised in a thread's main fiber when every fiber of the thread waits for a message, a join
  # or a resume that no fiber, thread, op, timer or signal trap can bring any more: the
  # program would hang forever. Its message lists the fibers and what each waits on.
  class DeadlockError < StandardError; end

  # Called by the machine's loop when it found nothing of its own that could wake a fiber: the
  # error to raise in +main+, or nil when another thread (it could send a message, unblock a
  # Queue) or a signal trap of the program's could still end a wait.
  def self.__deadlock__(_main)
    return nil if CoreExt::TrapsSeen.any? || other_threads_alive?

    tree = TreePrinter.new(current_machine(create: false)).render
    DeadlockError.new("deadlock: every fiber of #{Thread.current.inspect} waits for something nothing can " \
                      "bring any more (no op in flight, no timer, no other thread):\n#{tree}")
  end

  # The timeout watchdog's thread does not count: it raises only timeouts, and a timeout's
  # timer is an op in flight, which keeps its thread from deadlock detection already.
  def self.other_threads_alive?
    watchdog = TimeoutWatchdog.__thread__
    Thread.list.any? { |thread| !thread.equal?(Thread.current) && !thread.equal?(watchdog) }
  end
  private_class_method :other_threads_alive?
end
