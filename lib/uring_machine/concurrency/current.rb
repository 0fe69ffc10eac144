# frozen_string_literal: true

# UringMachine.current_machine: the machine the current fiber runs on.

module UringMachine
  # The machine the current fiber runs on: the one that started it, else the thread's
  # scheduler's (when it is ours), else the thread's own (created unless +create+ is false:
  # nil then for a thread without one).
  def self.current_machine(create: true)
    machine_of(Fiber.current) || scheduler_machine ||
      (create ? machine : Thread.current.thread_variable_get(:uring_machine))
  end

  # The machine of the thread's scheduler when it is a UringMachine::Scheduler, else nil.
  def self.scheduler_machine
    scheduler = Fiber.scheduler
    scheduler.machine if scheduler.is_a?(Scheduler)
  end
  private_class_method :scheduler_machine
end
