# frozen_string_literal: true

# The Rack handler, found by `rackup -s uring_machine` (Rack::Handler.get requires
# rack/handler/uring_machine and looks the registered name up).

require "rack/handler"
require_relative "../../uring_machine/rack"

module Rack
  module Handler
    # Rack::Handler::UringMachine.run(app, Host:, Port:, **options): rackup's Host and Port,
    # and any option of UringMachine::Rack::Server (`-O workers=2`, `-O header_timeout=5`).
    module UringMachine
      # rackup's option names for ours, and the help rackup prints for them.
      def self.valid_options
        {
          "Host=HOST" => "Hostname to listen on (default: 0.0.0.0)",
          "Port=PORT" => "Port to listen on (default: 9292)",
          "workers=N" => "Worker processes to fork (default: 0, serve in this process)"
        }.merge(
          (::UringMachine::Rack::Options::SIZES + ::UringMachine::Rack::Options::TIMES).to_h do |name|
            ["#{name}=N", "see UringMachine::Rack::Options (default: #{::UringMachine::Rack::Options::DEFAULTS[name]})"]
          end
        )
      end

      def self.run(app, **options)
        server = ::UringMachine::Rack::Server.new(app, **server_options(options))
        yield server if block_given?
        server.run
      end

      # The options of ours among rackup's (which passes many others: environment, config, ...),
      # numbers from the command line as numbers.
      def self.server_options(options)
        ours = ::UringMachine::Rack::Options::DEFAULTS.keys
        options.each_with_object({}) do |(name, value), picked|
          key = name.to_s.downcase.to_sym
          next unless ours.include?(key) && key != :log && !value.nil?

          picked[key] = value.is_a?(String) && key != :host ? numeric(value) : value
        end
      end

      def self.numeric(text)
        Integer(text, exception: false) || Float(text, exception: false) || text
      end
      private_class_method :server_options, :numeric
    end

    register :uring_machine, UringMachine
  end
end
