# frozen_string_literal: true

# Rack's autoloaded constants, loaded before serving: autoload locks per thread, not per
# fiber, so the first requests' fibers, racing for a constant another fiber of the thread is
# still loading, would find it missing (NameError: uninitialized constant Rack::File).

module UringMachine
  module Rack
    # Used by Server#run when Rack is loaded (it is under rackup).
    module Preload
      # Loads each of Rack's autoloads that loads here; returns the names of those that do not
      # (a library they need is missing): they stay autoloads.
      def self.rack_autoloads
        return [] unless defined?(::Rack)

        # Quiet: Rack 3.1 warns as it loads its deprecated constants, which the app may never use.
        verbose, $VERBOSE = $VERBOSE, nil
        ::Rack.constants.select { |name| ::Rack.autoload?(name) }.reject do |name|
          ::Rack.const_get(name)
        rescue LoadError
          false
        end
      ensure
        $VERBOSE = verbose
      end
    end
  end
end
