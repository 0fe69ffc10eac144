# frozen_string_literal: true

module UringMachine
  # A fiber's mailbox: other fibers, of any thread, send it messages (Fiber#<<), the fiber
  # takes them in order (UringMachine.receive), or the first one a block selects. With a limit,
  # a sender to a full mailbox waits until the fiber takes a message, like SizedQueue: only
  # the sending fiber waits (its thread's other fibers go on).
  class Mailbox
    def initialize
      @lock = Thread::Mutex.new
      @messages = []
      @limit = nil
      @receiver = nil # [fiber, machine] waiting for a message
      @senders = [] # [fiber, machine] pairs waiting for room, oldest first
    end

    attr_reader :limit

    def limit=(limit)
      unless limit.nil? || (limit.is_a?(Integer) && limit.positive?)
        raise ArgumentError, "mailbox limit must be a positive Integer or nil, not #{limit.inspect}"
      end

      waiters = @lock.synchronize do
        @limit = limit
        @senders.shift(limit ? [limit - @messages.size, 0].max : @senders.size)
      end
      waiters.each { |fiber, machine| machine.schedule(fiber) }
    end

    def size
      @lock.synchronize { @messages.size }
    end

    # Adds +message+; waits while the mailbox is full. Returns self.
    def push(message)
      me = nil
      loop do
        receiver = @lock.synchronize do
          if room.positive?
            @messages << message
            taken = @receiver
            @receiver = nil
            taken || true
          else
            me ||= [Fiber.current, UringMachine.current_machine]
            @senders << me unless @senders.include?(me)
            nil
          end
        end
        if receiver
          receiver[1].schedule(receiver[0]) if receiver.is_a?(Array)
          return self
        end
        me[1].suspend
      end
    ensure
      @lock.synchronize { @senders.delete(me) } if me
    end

    # Takes the oldest message, or with a block the oldest one the block is true for (the
    # others stay, in order; the block must not wait). Waits until there is one.
    def receive(&selector)
      me = nil
      loop do
        found, message, sender = @lock.synchronize do
          index = selector ? @messages.index(&selector) : (0 unless @messages.empty?)
          if index
            [true, @messages.delete_at(index), @senders.shift]
          else
            me ||= [Fiber.current, UringMachine.current_machine]
            @receiver = me
            nil
          end
        end
        if found
          sender&.then { |fiber, machine| machine.schedule(fiber) }
          return message
        end
        me[1].suspend
      end
    ensure
      @lock.synchronize { @receiver = nil if @receiver.equal?(me) } if me
    end

    # Takes every message there is, without waiting (an empty Array when there is none).
    def receive_all_pending
      messages, senders = @lock.synchronize do
        taken = @messages
        @messages = []
        [taken, @senders.shift(@senders.size)]
      end
      senders.each { |fiber, machine| machine.schedule(fiber) }
      messages
    end

    private

    # How many more messages fit (under the lock).
    def room
      @limit ? [@limit - @messages.size, 0].max : Float::INFINITY
    end
  end

  MAILBOX_CREATION = Thread::Mutex.new
  private_constant :MAILBOX_CREATION

  # Takes the current fiber's oldest message (or the first the block selects), waiting for one.
  def self.receive(&selector)
    Fiber.current.mailbox.receive(&selector)
  end

  # Takes every message waiting in the current fiber's mailbox, without waiting.
  def self.receive_all_pending
    Fiber.current.mailbox.receive_all_pending
  end

  def self.__mailbox_of__(fiber)
    MAILBOX_CREATION.synchronize do
      fiber.instance_variable_get(:@__uring_machine_mailbox) ||
        fiber.instance_variable_set(:@__uring_machine_mailbox, Mailbox.new)
    end
  end
end

# Mailboxes, for every fiber.
class Fiber
  # This fiber's UringMachine::Mailbox, created on first use.
  def mailbox
    @__uring_machine_mailbox || UringMachine.__mailbox_of__(self)
  end

  # Sends +message+ to this fiber (waiting while its mailbox is full). Returns self.
  def <<(message)
    mailbox.push(message)
    self
  end

  # The most messages its mailbox holds before senders wait (nil: no limit, the default).
  def mailbox_limit
    mailbox.limit
  end

  def mailbox_limit=(limit)
    mailbox.limit = limit
  end
end
