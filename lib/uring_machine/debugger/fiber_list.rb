# frozen_string_literal: true

# UringMachine::Debugger::FiberList: the `fibers` command's listing.

module UringMachine
  module Debugger
    # The `fibers` command: the fiber tree of the stopped fiber's thread, numbered (for
    # `switch N`), with the run queue and what each fiber waits on.
    class FiberList
      attr_reader :fibers

      def initialize(machine, stopped:, traced:)
        @stopped = stopped
        @traced = traced
        @waits = WaitDescription.new(machine, label: ->(fiber) { "fiber #{@fibers.index(fiber) + 1}" })
        @fibers = []
        @rows = []
      end

      def render
        roots.each { |root| walk(root, 0) }
        @waits.fibers.each { |fiber| walk(fiber, 0) unless @fibers.include?(fiber) }
        queue = @waits.runqueue.filter_map { |f| @fibers.index(f)&.+(1) }.uniq
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

        @waits.describe(fiber, @fibers) || "not parked on this machine"
      end
    end
  end
end
