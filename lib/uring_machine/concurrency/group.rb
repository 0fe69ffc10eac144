# frozen_string_literal: true

# UringMachine::Group and UringMachine.group: fibers joined together.

module UringMachine
  # Fibers spun into a group (each a child of the fiber that spins it) and joined together:
  # join returns their values in spawn order. A member's end is reported to the group first
  # (UringMachine.__report_to__):
  #
  # - errors: :raise (the default): the first failure stops the other members (their ensure
  #   blocks run) and is raised by join. If nobody is in join (or first) when it happens, it
  #   goes to the member's parent at once, as any child's failure does, and join does not
  #   raise it there a second time (each failure is raised once in a fiber). Later failures
  #   of members (in their ensure blocks, as they stop) are kept in #failures.
  # - errors: :collect: no failure stops the others or reaches the parent; join waits for all
  #   and returns each one's value or the exception it failed with, in spawn order. The
  #   failures wait for join, so join the group (the block form of UringMachine.group does).
  #
  # Only StandardError failures are the group's to keep: a signal exception, SystemExit and
  # the like go their usual way (they still count as a first failure).
  class Group
    ERRORS = %i[raise collect].freeze

    def initialize(errors: :raise)
      raise ArgumentError, "errors must be one of #{ERRORS.inspect}, not #{errors.inspect}" unless ERRORS.include?(errors)

      @errors = errors
      @fibers = []
      @ended = {}.compare_by_identity
      @ends = Mailbox.new
      @failures = []
      @told = nil # the fiber the first failure was raised in, when nobody was joining
      @waiting = 0
    end

    # :raise or :collect.
    attr_reader :errors

    # The members, in spawn order.
    def fibers = @fibers.dup

    # [fiber, exception] for each member's failure, first first.
    def failures = @failures.dup

    # spin(*args) { |*args| }: a new member, a child of the current fiber (see UringMachine.spin).
    def spin(*args, &block)
      raise ArgumentError, "spin needs a block" unless block

      group = self
      fiber = UringMachine.spin(*args) do |*given|
        UringMachine.__report_to__(Fiber.current, group)
        block.call(*given)
      end
      @fibers << fiber
      fiber
    end

    # Adds a fiber that spin or Fiber.schedule started (of any thread) to the group; its end is
    # reported to this group only from now on (a fiber is in one group at a time). Returns self.
    def add(fiber)
      raise TypeError, "expected a Fiber, not #{fiber.class}" unless fiber.is_a?(Fiber)
      raise ArgumentError, "only a fiber that spin or Fiber.schedule started can join a group" unless UringMachine.machine_of(fiber)
      raise ArgumentError, "#{fiber.inspect} is already in this group" if @fibers.include?(fiber)

      UringMachine.__report_to__(fiber, self)
      @fibers << fiber
      self
    end

    # Waits for every member to finish; returns their values in spawn order (see the class
    # comment for failures; a stopped member's value is what Fiber#stop was given).
    def join
      wait_until { @fibers.all? { |fiber| ended?(fiber) } }
      first = @failures.first
      raise first[1] if @errors == :raise && first && !@told&.equal?(Fiber.current)

      @fibers.map { |fiber| outcome(fiber) }
    end
    alias await join

    # Waits for the first member to finish (Polyphony's Fiber.select): [fiber, value], or raises
    # its failure. The others run on. Members that ended already count: the first of them in
    # spawn order.
    def first
      raise ArgumentError, "the group has no fibers" if @fibers.empty?

      wait_until { @fibers.any? { |fiber| ended?(fiber) } }
      fiber = @fibers.find { |f| ended?(f) }
      value = outcome(fiber)
      raise value if value.is_a?(Exception) && @failures.any? { |f, _| f.equal?(fiber) }

      [fiber, value]
    end

    # Stops the members that still run and waits for them. Returns self.
    def stop
      living = @fibers.reject { |fiber| ended?(fiber) }
      living.each(&:stop)
      wait_until { living.all? { |fiber| ended?(fiber) } }
      self
    end

    # Called by each member as it finishes, from its own fiber (or thread): whether the group
    # takes its failure (it is then not raised in the member's parent).
    def child_finished(fiber, error)
      @ended[fiber] = true
      @ends.push(fiber)
      return false unless error

      first = @failures.empty?
      @failures << [fiber, error]
      return error.is_a?(StandardError) if @errors == :collect
      return take_later_failure(error) unless first

      (@fibers - [fiber]).each(&:stop)
      return true if @waiting.positive? && error.is_a?(StandardError)

      @told = fiber.parent
      false
    end

    private

    def take_later_failure(error) = error.is_a?(StandardError)

    def ended?(fiber)
      @ended.key?(fiber) || !fiber.alive?
    end

    def wait_until
      @waiting += 1
      @ends.receive until yield
    ensure
      @waiting -= 1
    end

    # A finished member's value, or the exception it failed with (nil for the one whose
    # failure was raised in this fiber already).
    def outcome(fiber)
      fiber.join
    rescue Exception => e # rubocop:disable Lint/RescueException: a member's failure, kept as its outcome
      e
    end
  end

  # Waits for every fiber (Polyphony's Fiber.await): their values in order; the first failure
  # stops the others and is raised (a Group with errors: :raise).
  def self.await(*fibers)
    group = Group.new
    fibers.each { |fiber| group.add(fiber) }
    group.join
  end

  # Waits for the first of +fibers+ to finish (Polyphony's Fiber.select): [fiber, value], or
  # raises its failure. The others run on, their failures going to their parents as before.
  def self.select(*fibers)
    group = Group.new
    fibers.each { |fiber| group.add(fiber) }
    group.first
  ensure
    fibers.each { |fiber| __report_to__(fiber, nil) if fiber.is_a?(Fiber) && machine_of(fiber) }
  end

  # Without a block: a new UringMachine::Group. With one: yields a new group, then joins it and
  # returns the values (see Group#join); if the block or the join is left by an exception, the
  # members still running are stopped first.
  def self.group(errors: :raise)
    group = Group.new(errors: errors)
    return group unless block_given?

    begin
      yield group
      group.join
    ensure
      group.stop
    end
  end
end
