# frozen_string_literal: true

# UringMachine::ResourcePool: connections (or any resource) shared by fibers.

module UringMachine
  # Resources made by the block, on demand, at most +limit+ at a time, each lent to one fiber
  # at a time (Polyphony's ResourcePool). acquire { |resource| } lends an idle one, makes one
  # if fewer than limit exist, else waits for one to come back.
  #
  # A resource is discarded instead of coming back (closed if it responds to close, and made
  # again when needed) when the block was left by:
  # - an exception that is not a StandardError: the block was stopped, cancelled by a
  #   deadline or interrupted mid-use, so the resource's state is unknown (half a request sent);
  # - an exception of one of the +discard_on+ classes: by default IOError, SystemCallError,
  #   Timeout::Error and UringMachine::Cancel, which say the connection itself broke or timed
  #   out.
  # Other StandardErrors (an application error, a bad query) leave the resource in the pool.
  class ResourcePool
    DISCARD_ON = [IOError, SystemCallError, Timeout::Error, Cancel].freeze

    def initialize(limit:, discard_on: DISCARD_ON, &create)
      raise ArgumentError, "ResourcePool needs a block that makes a resource" unless create

      discard_on = Array(discard_on)
      unless discard_on.all? { |klass| klass.is_a?(Class) && klass <= Exception }
        raise TypeError, "discard_on must be Exception classes"
      end

      @create = create
      @discard_on = discard_on.freeze
      @slots = Semaphore.new(limit)
      @idle = []
      @size = 0
    end

    # How many resources may exist at a time (changeable, as Semaphore#limit).
    def limit = @slots.limit

    def limit=(limit)
      @slots.limit = limit
    end

    # How many resources exist (lent or idle).
    attr_reader :size

    # How many are idle.
    def available = @idle.size

    # Lends a resource to the block and returns the block's value (see the class comment for
    # when the resource is discarded).
    def acquire
      raise ArgumentError, "acquire needs a block" unless block_given?

      @slots.acquire do
        resource = @idle.pop || make
        failure = nil
        begin
          yield resource
        rescue Exception => e # rubocop:disable Lint/RescueException: only noted, then re-raised
          failure = e
          raise
        ensure
          failure && broken_by?(failure) ? discard(resource) : @idle.push(resource)
        end
      end
    end

    private

    def make
      resource = @create.call
      @size += 1
      resource
    end

    def broken_by?(error)
      !error.is_a?(StandardError) || @discard_on.any? { |klass| error.is_a?(klass) }
    end

    # Its close failing changes nothing: it is already known to be broken.
    def discard(resource)
      @size -= 1
      resource.close if resource.respond_to?(:close)
    rescue StandardError
      nil
    end
  end
end
