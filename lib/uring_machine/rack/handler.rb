# frozen_string_literal: true

# The handler rackup runs (`rackup -s uring_machine`): rackup's options to ours, then Server#run.
# Registered by lib/rack/handler/uring_machine.rb (Rack 2) and lib/rackup/handler/uring_machine.rb
# (the rackup gem, Rack 3).

module UringMachine
  module Rack
    # run(app, Host:, Port:, **options): rackup's Host and Port, and any option of Server
    # (`-O workers=2`, `-O threads=2`, `-O header_timeout=5`).
    module Handler
      # rackup's option names for ours, and the help rackup prints for them.
      def self.valid_options
        {
          "Host=HOST" => "Hostname to listen on (default: 0.0.0.0)",
          "Port=PORT" => "Port to listen on (default: 9292)",
          "workers=N" => "Worker processes to fork (default: 0, serve in this process)",
          "threads=M" => "Serving threads per process (default: 1)"
        }.merge((Options::SIZES + Options::TIMES).to_h { |name| ["#{name}=N", "default: #{Options::DEFAULTS[name]}"] })
      end

      def self.run(app, **options)
        server = Server.new(app, **server_options(options))
        yield server if block_given?
        server.run
      end

      # The options of ours among rackup's (which passes many others: environment, config, ...),
      # numbers from the command line as numbers.
      def self.server_options(options)
        options.each_with_object({}) do |(name, value), picked|
          key = name.to_s.downcase.to_sym
          next unless Options::DEFAULTS.key?(key) && key != :log && !value.nil?

          picked[key] = value.is_a?(String) && key != :host ? numeric(value) : value
        end
      end

      def self.numeric(text)
        Integer(text, exception: false) || Float(text, exception: false) || text
      end
      private_class_method :server_options, :numeric
    end
  end
end
