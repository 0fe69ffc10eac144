# frozen_string_literal: true

# What a fiber waits on, in words: one text for print_tree and the debugger's `fibers` list.

module UringMachine
  # Describes the state of the fibers of one machine: runnable, finished, or what each waits
  # on (an op, a timer, I/O readiness, a Mutex or Queue, a mailbox, a join). The caller names
  # fibers its own way (+label+) and says which fibers it lists (+fibers+, searched for the
  # owner of a full mailbox and for the fiber joined).
  class WaitDescription
    def initialize(machine, label:)
      @waits = machine ? machine.__waits__.to_h { |fiber, what, detail| [fiber, [what, detail]] } : {}
      @runqueue = machine ? machine.__runqueue__ : []
      @label = label
    end

    # The machine's run queue, in the order its fibers will run.
    attr_reader :runqueue

    # The fibers parked on the machine or in its run queue.
    def fibers
      (@waits.keys + @runqueue).uniq
    end

    # nil for a fiber that is not parked (the running one).
    def describe(fiber, fibers)
      return "finished" unless fiber.alive?
      return "runnable" if @runqueue.include?(fiber)

      what, detail = @waits[fiber]
      case what
      when nil then nil
      when :timer then format("sleeping, %.2f s left", detail)
      when :op then "waiting on #{detail}"
      when :poll then "waiting for I/O readiness#{left(detail)}"
      when :blocked then "blocked on a #{detail.class}"
      when :suspended then suspension(fiber, detail, fibers)
      else "waiting outside this thread's machine"
      end
    end

    private

    # A suspended fiber waits for a message, for room in a mailbox, for a fiber to finish, or
    # for its time to pass (a sleep under the scheduler).
    def suspension(fiber, seconds, fibers)
      return "receiving (mailbox empty)#{left(seconds)}" if fiber.mailbox.__waiters__[0].include?(fiber)

      full = fibers.find { |other| other.mailbox.__waiters__[1].include?(fiber) }
      return "sending to the full mailbox of #{@label.call(full)}#{left(seconds)}" if full

      joined = fibers.find { |other| UringMachine.__joiners_of__(other).include?(fiber) }
      return "joining #{@label.call(joined)}" if joined
      return format("sleeping, %.2f s left", seconds) if seconds

      "suspended"
    end

    def left(seconds)
      seconds ? format(", %.2f s left", seconds) : ""
    end
  end
end
