# frozen_string_literal: true

# UringMachine.supervise (UringMachine::Supervisor) and UringMachine::RestartLimitError.

module UringMachine
  # Raised out of supervise when a fiber needed more restarts than allowed; its cause is the
  # failure that ended the fiber last, if any.
  class RestartLimitError < StandardError; end

  # supervise(*fibers, restart: nil | :on_error | :always, max_restarts: 5, within: 10)
  #   { |event, fiber, error| }
  # Watches +fibers+ (by default every child of the current fiber) until all have finished
  # for good, and returns nil. Each one's end is an event, not an exception raised here:
  # :stop (it returned, or was stopped) or :error (error is what it raised). restart: :on_error
  # starts a failed fiber again (Fiber#restart), :always any fiber that ended, each time
  # reported as :restart with the new fiber; more than +max_restarts+ restarts of the
  # supervised fibers within +within+ seconds raise RestartLimitError. :start is reported for
  # each fiber at the beginning. Leaving supervise early (an exception raised in it) stops the
  # fibers it still watches. A failure of a child it does not watch is raised here, as usual,
  # except for the fibers spin(isolated: true) started among the descendants of the
  # supervising fiber (an acceptor's connections): their failures are :error events, with no
  # restart, and the fibers around them go on.
  def self.supervise(*fibers, restart: nil, max_restarts: 5, within: 10, &hook)
    Supervisor.new(fibers, restart: restart, max_restarts: max_restarts, within: within, hook: hook).run
  end

  # The bookkeeping of one supervise call (see UringMachine.supervise).
  class Supervisor
    POLICIES = [nil, :on_error, :always].freeze

    def initialize(fibers, restart:, max_restarts:, within:, hook:)
      raise ArgumentError, "restart must be one of #{POLICIES.inspect}, not #{restart.inspect}" unless POLICIES.include?(restart)
      raise ArgumentError, "max_restarts must be a non-negative Integer" unless max_restarts.is_a?(Integer) && !max_restarts.negative?
      raise ArgumentError, "within must be a positive number of seconds" unless within.is_a?(Numeric) && within.positive?

      @fiber = Fiber.current
      @fibers = (fibers.empty? ? @fiber.children : fibers).select(&:alive?)
      @policy = restart
      @max_restarts = max_restarts
      @within = within
      @hook = hook
      @restarts = []
      @ends = Mailbox.new
    end

    def run
      @fibers.each { |fiber| UringMachine.__adopt__(@fiber, fiber, true) unless @fiber.equal?(fiber.parent) }
      UringMachine.__watch__(@fiber, self)
      @fibers.each { |fiber| emit(:start, fiber, nil) }
      until @fibers.empty?
        fiber, error = @ends.receive
        next handle_end(fiber, error) if @fibers.include?(fiber)
        next emit(:error, fiber, error) if error && UringMachine.__isolated__(fiber)
        raise error if error # a child it does not watch
      end
      nil
    ensure
      UringMachine.__watch__(@fiber, nil)
      stop_watched
    end

    # Called by each child of the supervising fiber as it finishes, from its own fiber.
    def child_finished(fiber, error)
      @ends.push([fiber, error])
    end

    # Called by an isolated descendant deeper down as it fails (see isolation.rb).
    def descendant_failed(fiber, error)
      @ends.push([fiber, error])
    end

    private

    def handle_end(fiber, error)
      emit(error ? :error : :stop, fiber, error)
      @fibers.delete(fiber)
      return unless @policy == :always || (@policy == :on_error && error)

      count_restart(error)
      replacement = fiber.restart
      @fibers << replacement
      emit(:restart, replacement, error)
    end

    def count_restart(error)
      now = ::Process.clock_gettime(::Process::CLOCK_MONOTONIC)
      @restarts.shift while @restarts.first && @restarts.first < now - @within # oldest first
      @restarts << now
      return if @restarts.size <= @max_restarts

      raise RestartLimitError, "more than #{@max_restarts} restarts within #{@within} s", cause: error
    end

    def emit(event, fiber, error)
      return unless @hook

      @hook.arity == 2 ? @hook.call(event, fiber) : @hook.call(event, fiber, error)
    end

    # On the way out by an exception: the watched fibers do not outlive their supervisor.
    def stop_watched
      living = @fibers.select(&:alive?)
      living.each(&:stop)
      living.each do |fiber|
        fiber.join
      rescue StandardError
        nil # its end is no news to anyone now
      end
    end
  end
end
