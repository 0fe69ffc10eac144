# frozen_string_literal: true

module UringMachine
  # CRuby 3.3 and 3.4 call the scheduler's io_pwrite hook from IO#pwrite while the GVL is
  # released (internal_pwrite_func runs inside a blocking region), which corrupts the VM under
  # any scheduler. While one of ours is active, IO#pwrite goes to the scheduler directly, with
  # the GVL held.
  module SafePwrite
    def pwrite(object, offset)
      scheduler = Fiber.scheduler
      return super unless scheduler.is_a?(Scheduler) && !Fiber.current.blocking?

      scheduler.pwrite_string(self, object.is_a?(String) ? object : object.to_s, offset)
    end
  end

  IO.prepend(SafePwrite) if RUBY_VERSION.start_with?("3.3.", "3.4.")
end
