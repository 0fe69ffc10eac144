# frozen_string_literal: true

# TERM and INT as a graceful stop, for the length of a block (the handlers before are put back).

module UringMachine
  module Rack
    # Used by Server (one process) and Workers (the master, and each worker).
    module StopSignals
      SIGNALS = %w[TERM INT].freeze

      # Runs the block with +stop+ (a callable, called from the trap handler) as what TERM and
      # INT do.
      def self.trapped(stop)
        previous = SIGNALS.to_h { |signal| [signal, trap(signal) { stop.call }] }
        begin
          yield
        ensure
          previous.each { |signal, handler| trap(signal, handler) }
        end
      end
    end
  end
end
