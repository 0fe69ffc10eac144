# frozen_string_literal: true

# What a server counts: connections, requests, and each kind of failure (which are also logged).

module UringMachine
  module Rack
    # Counters, read with #to_h. One per serving thread (its fibers only: no lock needed); Server#stats sums them.
    class Stats
      COUNTERS = %i[connections requests app_errors bad_requests timeouts client_errors internal_errors worker_restarts].freeze

      def initialize
        @counts = COUNTERS.to_h { |name| [name, 0] }
      end

      def increment(name)
        @counts[name] += 1
      end

      def to_h
        @counts.dup
      end
    end
  end
end
