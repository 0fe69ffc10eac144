# frozen_string_literal: true

# UringMachine::Debugger::FiberList: the `fibers` command's listing.

module UringMachine
  module Debugger
    # The `fibers` command: the fiber tree of the stopped fiber's thread, numbered (for
    # `switch N`), with the run queue and what each fiber waits on.
    class FiberList
      attr_reader :fibers

      def initialize(machine, stopped:, traced:)
        @machine = machine
        @stopped = stopped
        @traced = traced
        @waits = machine.__waits__.to_h { |fiber, what, detail| [fiber, [what, detail]] }
        @runqueue = machine.__runqueue__
        @fibers = []
        @rows = []
      end

      def render
        roots.each { |root| walk(root, 0) }
        (@waits.keys + @runqueue).uniq.each { |fiber| walk(fiber, 0) unless @fibers.include?(fiber) }
        queue = @runqueue.filter_map { |f| @fibers.index(f)&.+(1) }.uniq
        "#{@rows.join("\n")}\nrun queue: #{queue.empty? ? "(empty)" : queue.join(", ")}\n"
      end

      private

      def roots
        root = @stopped
        root = root.parent while root.parent
        [root]
      end

      def walk(fiber, level)
        return if @fibers.include?(fiber)

        @fibers << fiber
        marker = if fiber.equal?(@stopped) then "*"
                 elsif fiber.equal?(@traced) then ">"
                 else " "
                 end
        @rows << format("%s%3d %s%s  %s", marker, @fibers.size, "  " * level, label(fiber), status(fiber))
        UringMachine.children_of(fiber).each { |child| walk(child, level + 1) }
      end

      def label(fiber)
        block = UringMachine.__body_of__(fiber)&.first
        where = block ? block.source_location.join(":") : fiber.inspect[/ (\S+:\d+)/, 1]
        where = where&.sub("#{Dir.pwd}/", "")
        return "fiber #{format("0x%x", fiber.object_id)} (root)" if !where && fiber.parent.nil?
        id = format("0x%x", fiber.object_id)
        where ? "fiber #{id} (#{where})" : "fiber #{id}"
      end

      def status(fiber)
        return "stopped here" if fiber.equal?(@stopped)
        return "finished" unless fiber.alive?
        return "runnable (in the run queue)" if @runqueue.include?(fiber)

        what, detail = @waits[fiber]
        case what
        when :timer then format("sleeping, %.2f s left", detail)
        when :op then "waiting on #{detail}"
        when :poll then "waiting for I/O readiness#{left(detail)}"
        when :blocked then "blocked on #{detail.class}#{left(nil)}"
        when :suspended then suspended(fiber, detail)
        else "not parked on this machine"
        end
      end

      def suspended(fiber, left)
        mailbox = mailbox_wait(fiber)
        return "#{mailbox}#{left(left)}" if mailbox
        return format("sleeping, %.2f s left", left) if left

        "suspended"
      end

      def mailbox_wait(fiber)
        return "receiving (mailbox empty)" if fiber.mailbox.__waiters__[0].include?(fiber)

        full = @fibers.find { |other| other.mailbox.__waiters__[1].include?(fiber) }
        "sending to the full mailbox of fiber #{@fibers.index(full) + 1}" if full
      end

      def left(seconds)
        seconds ? format(", %.2f s left", seconds) : ""
      end
    end
  end
end
