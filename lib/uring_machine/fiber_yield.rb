# frozen_string_literal: true

module UringMachine
  # Fibers that spin and Fiber.schedule start are switched to with Fiber#transfer, so there is
  # no resumer for a plain Fiber.yield to return to (Ruby would raise FiberError). In such a
  # fiber, Fiber.yield suspends it instead, as the yield to the event loop it means: the other
  # fibers go on, and Machine#schedule(fiber, value) resumes it, Fiber.yield returning value
  # (under a scheduler it is Scheduler#transfer, which run and close do not wait for).
  # Fibers resumed the usual way (Fiber.new { }.resume) yield as always.
  module FiberYieldSuspends
    def yield(*values)
      machine = UringMachine.machine_of(Fiber.current)
      return super unless machine

      scheduler = Fiber.scheduler
      # A scheduler's fiber parks through the scheduler, so that run and close do not wait for it
      if scheduler.is_a?(Scheduler) && scheduler.machine.equal?(machine)
        scheduler.transfer
      else
        machine.suspend
      end
    end
  end

  # Installed with the first Machine: programs that load the gem without using it keep the
  # plain Fiber.yield.
  module InstallFiberYieldSuspends
    def new(...)
      Fiber.singleton_class.prepend(FiberYieldSuspends) unless Fiber.singleton_class <= FiberYieldSuspends
      super
    end
  end

  Machine.singleton_class.prepend(InstallFiberYieldSuspends)
end
