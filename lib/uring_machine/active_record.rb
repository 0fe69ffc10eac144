# frozen_string_literal: true

# `require "uring_machine/active_record"`: ActiveRecord 6.1 gives each fiber its own pooled
# connection, as Rails 7's `isolation_level = :fiber` does. 6.1 keys connections by thread,
# so the fibers of one thread would share one connection and interleave their queries and
# transactions; here the owner of a leased connection is the fiber that leased it.

require "active_record"

unless ActiveRecord.version.segments.first(2) == [6, 1]
  # 7.0 and later do this themselves: ActiveSupport::IsolatedExecutionState.isolation_level = :fiber
  raise LoadError, "uring_machine/active_record is for ActiveRecord 6.1, not #{ActiveRecord.version}"
end

module UringMachine
  # The opt-in ActiveRecord integration (prepended to ActiveRecord's own classes here, never
  # by the gem's own loading).
  module ActiveRecord
    # ConnectionPool: the cache of leased connections is keyed by fiber.
    module FiberConnectionPool
      private

      # 6.1 passes the current thread (or a connection's owner, a fiber here).
      def connection_cache_key(owner)
        owner.equal?(Thread.current) ? Fiber.current : owner
      end
    end

    # AbstractAdapter: a connection is leased to, expired by and stolen for a fiber (6.1's own
    # methods do the same with Thread.current; the pool's mutex is held around each).
    module FiberOwnedConnection
      def lease
        if in_use?
          holder = @owner.equal?(Fiber.current) ? "the current fiber" : @owner.inspect
          raise ::ActiveRecord::ActiveRecordError, "Cannot lease connection, it is already leased by #{holder}"
        end
        @owner = Fiber.current
      end

      def expire
        raise ::ActiveRecord::ActiveRecordError, "Cannot expire connection, it is not currently leased." unless in_use?
        unless @owner.equal?(Fiber.current)
          raise ::ActiveRecord::ActiveRecordError, "Cannot expire connection, it is owned by another fiber: #{@owner.inspect}"
        end

        @idle_since = Concurrent.monotonic_time
        @owner = nil
      end

      def steal!
        raise ::ActiveRecord::ActiveRecordError, "Cannot steal connection, it is not currently leased." unless in_use?
        return if @owner.equal?(Fiber.current)

        pool.send(:remove_connection_from_thread_cache, self, @owner)
        @owner = Fiber.current
      end
    end
  end
end

# Autoload locks per thread, not per fiber: fibers that reach a constant ActiveRecord is still
# autoloading in another fiber of their thread find it half-defined. Load them all now.
ActiveRecord.eager_load!
ActiveRecord::ConnectionAdapters::ConnectionPool.prepend(UringMachine::ActiveRecord::FiberConnectionPool)
ActiveRecord::ConnectionAdapters::AbstractAdapter.prepend(UringMachine::ActiveRecord::FiberOwnedConnection)
