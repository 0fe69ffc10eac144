# frozen_string_literal: true

# UringMachine::Semaphore: at most so many fibers at a time.

module UringMachine
  # At most +limit+ holders at a time, from fibers of any thread; the others wait in acquire,
  # first come first served, without blocking their thread's other fibers. Its permits are
  # messages in a UringMachine::Mailbox, so it works under the scheduler and with the Machine
  # API alike. The limit can change at any time: a larger one lets waiters in at once, a
  # smaller one takes effect as holders release.
  class Semaphore
    def initialize(limit)
      @permits = Mailbox.new
      @lock = Thread::Mutex.new # the counts, between threads; never held while waiting
      @limit = 0
      @held = 0
      @owed = 0 # permits to swallow as they come back, after the limit went down
      self.limit = limit
    end

    # How many may hold it at a time.
    attr_reader :limit

    # How many hold it now.
    def count = @held

    def limit=(limit)
      raise TypeError, "limit must be an Integer, not #{limit.class}" unless limit.is_a?(Integer)
      raise ArgumentError, "limit must not be negative" if limit.negative?

      @lock.synchronize do
        change = limit - @limit
        @limit = limit
        change.positive? ? add_permits(change) : remove_permits(-change)
      end
    end

    # Waits for a permit. With a block: runs it, releases the permit however it ends, and
    # returns its value; without: returns true (call release later).
    def acquire
      @permits.receive
      @lock.synchronize { @held += 1 }
      return true unless block_given?

      begin
        yield
      ensure
        release
      end
    end

    # Gives a permit back. ThreadError when nobody holds one.
    def release
      @lock.synchronize do
        raise ThreadError, "release without acquire" if @held.zero?

        @held -= 1
        @owed.positive? ? @owed -= 1 : @permits.push(true)
      end
      nil
    end

    private

    def add_permits(count)
      paid = [count, @owed].min
      @owed -= paid
      (count - paid).times { @permits.push(true) }
    end

    def remove_permits(count)
      free = @permits.receive_all_pending.size
      (free - count).times { @permits.push(true) } if free > count
      @owed += count - free if count > free
    end
  end
end
