# frozen_string_literal: true

# UringMachine.print_tree (Async's print_hierarchy): the current thread's fibers, one a line.

module UringMachine
  # Prints every fiber of the current thread, indented under its parent: its name (or where it
  # was spun), its state, what it waits on (an op, a timer, a mailbox, a join, a Mutex or
  # Queue under the scheduler) and its age. Returns nil.
  #
  #   #<Fiber:0x... (root)> running
  #     "acceptor" chat_server.rb:20  waiting on accept, 12.0 s old
  #       "client 1" chat_server.rb:24  receiving (mailbox empty), 3.2 s old
  def self.print_tree(io = $stdout)
    io.write(TreePrinter.new(current_machine(create: false)).render)
    nil
  end

  # The text of print_tree, computed from the machine's view of its fibers.
  class TreePrinter
    def initialize(machine)
      @waits = WaitDescription.new(machine, label: method(:label))
      @now = ::Process.clock_gettime(::Process::CLOCK_MONOTONIC, :nanosecond)
      @seen = {}.compare_by_identity
    end

    def render
      walk(Thread.current.main_fiber, 0)
      @waits.fibers.each { |fiber| walk(fiber, 0) }
      rows = @seen.map do |fiber, depth|
        "#{"  " * depth}#{label(fiber)}  #{[state(fiber), age(fiber)].compact.join(", ")}"
      end
      "#{rows.join("\n")}\n"
    end

    private

    # Every fiber first (a joiner's row names the fiber it joins), with its depth in the tree.
    def walk(fiber, depth)
      return if @seen.key?(fiber)

      @seen[fiber] = depth
      fiber.children.each { |child| walk(child, depth + 1) }
    end

    def label(fiber)
      where = UringMachine.__body_of__(fiber)&.first&.source_location&.join(":")&.delete_prefix("#{Dir.pwd}/")
      return "#<Fiber:0x#{fiber.object_id.to_s(16)} (root)>" unless where || fiber.name

      [fiber.name&.inspect || "fiber 0x#{fiber.object_id.to_s(16)}", where].compact.join(" ")
    end

    def age(fiber)
      born = UringMachine.__born__(fiber)
      born && format("%.1f s old", (@now - born) / 1e9)
    end

    def state(fiber)
      described = @waits.describe(fiber, @seen.keys)
      return described if described

      fiber.equal?(Fiber.current) ? "running" : "waiting outside this thread's machine"
    end
  end
end
