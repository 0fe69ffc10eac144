# frozen_string_literal: true

# The body of every fiber that UringMachine.spin, Fiber.schedule and Machine#spin create.

module UringMachine
  # __run_fiber__ calls the fiber's block from Ruby, between two Rust calls that do the
  # bookkeeping (ext/uring_machine/src/machine/fibers.rs): a block called from Rust would run
  # in a second VM frame loop, whose C frames, with the Rust ones around them, pushed a
  # waiting fiber's machine stack past its first page: 4 KiB more memory for each fiber.
  # Included in Machine and Scheduler, which define __fiber_begin__, __fiber_end__ and
  # __fiber_unwound__.
  module FiberBody
    private

    # The Proc every fiber made here runs, one for all of them: what a fiber runs is in its
    # ivars (UringMachine.__set_body__), not in a Proc and its captured locals per fiber.
    def __fiber_body__
      @__fiber_body__ ||= proc { __run_fiber__ }
    end

    def __run_fiber__
      ended = false
      begin
        value = __fiber_begin__.call(*__fiber_args__)
      rescue Exception => error # rubocop:disable Lint/RescueException -- the fiber's outcome, whatever it is
      end
      ended = true
      __fiber_end__(value, error)
    ensure
      # Fiber#kill or Thread#kill left the block: the bookkeeping runs, the kill goes on.
      __fiber_unwound__ unless ended
    end
  end
end
