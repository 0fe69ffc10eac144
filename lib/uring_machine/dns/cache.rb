# frozen_string_literal: true

# UringMachine::DNS::Cache: answers kept for their TTL.

module UringMachine
  module DNS
    # Answers by [name, record class], each kept for its TTL: the smallest TTL of the records
    # (a CNAME chain's included) for a positive answer, the SOA's negative TTL (RFC 2308:
    # min(SOA TTL, SOA minimum)) for NXDOMAIN and for "no such records". A TTL of 0, or a
    # negative answer without an SOA, is not kept. At most +max_entries+ entries (expired ones
    # go first, then the oldest); +max_ttl+ caps every TTL. Thread-safe.
    class Cache
      Entry = Struct.new(:value, :expires_at)

      attr_reader :max_entries, :max_ttl

      def initialize(max_entries: 10_000, max_ttl: 86_400)
        raise ArgumentError, "max_entries must be a positive Integer" unless max_entries.is_a?(Integer) && max_entries.positive?
        raise ArgumentError, "max_ttl must be a non-negative number" unless max_ttl.is_a?(Numeric) && max_ttl >= 0

        @max_entries = max_entries
        @max_ttl = max_ttl
        @entries = {}
        @lock = Thread::Mutex.new
        @hits = 0
        @misses = 0
      end

      # The value stored for +key+ if it has not expired, else nil.
      def get(key)
        now = DNS.clock
        @lock.synchronize do
          entry = @entries[key]
          if entry && entry.expires_at > now
            @hits += 1
            entry.value
          else
            @entries.delete(key) if entry
            @misses += 1
            nil
          end
        end
      end

      # Keeps +value+ for +ttl+ seconds (nothing for a TTL of nil, 0 or less). Returns +value+.
      def set(key, value, ttl)
        return value if ttl.nil?

        ttl = [ttl, @max_ttl].min
        return value unless ttl.positive?

        now = DNS.clock
        @lock.synchronize do
          @entries.delete(key)
          make_room(now) if @entries.size >= @max_entries
          @entries[key] = Entry.new(value, now + ttl)
        end
        value
      end

      def clear
        @lock.synchronize { @entries.clear }
        self
      end

      def size
        @lock.synchronize { @entries.size }
      end

      # {entries:, hits:, misses:}
      def stats
        @lock.synchronize { { entries: @entries.size, hits: @hits, misses: @misses } }
      end

      private

      def make_room(now)
        @entries.delete_if { |_, entry| entry.expires_at <= now }
        @entries.shift while @entries.size >= @max_entries # Hashes keep insertion order: oldest first
      end
    end
  end
end
