# frozen_string_literal: true

# The Rack server's options: their defaults and checks, so that a bad one is an ArgumentError
# before anything is bound.

module UringMachine
  module Rack
    # The options of Server.new, each with its default. Sizes in bytes, times in seconds.
    class Options
      DEFAULTS = {
        host: "0.0.0.0",
        port: 9292,
        workers: 0,                    # 0: serve in this process; N: fork N supervised workers
        threads: 1,                    # serving threads per process, each with its own scheduler
        backlog: 1024,
        max_request_line: 8192,        # 414 past it
        max_head_bytes: 65_536,        # the request line and all fields: 431 past it
        max_headers: 100,              # 431 past it
        max_body_bytes: 64 * 1024**2,  # 413 past it
        body_in_memory_bytes: 128 * 1024, # a larger rack.input goes to a Tempfile
        header_timeout: 10,            # from a request's first byte to the end of its head: 408
        body_timeout: 30,              # to read a request's whole body: 408
        keep_alive_timeout: 20,        # idle between requests: the connection is closed
        shutdown_timeout: 30,          # graceful stop: in-flight requests get this long
        log: $stderr                   # one line per failure (an app exception, a reset, ...)
      }.freeze
      SIZES = %i[max_request_line max_head_bytes max_headers max_body_bytes body_in_memory_bytes backlog].freeze
      TIMES = %i[header_timeout body_timeout keep_alive_timeout shutdown_timeout].freeze

      DEFAULTS.each_key { |name| attr_reader name }

      def initialize(**options)
        unknown = options.keys - DEFAULTS.keys
        raise ArgumentError, "unknown option#{'s' if unknown.size > 1}: #{unknown.join(', ')}" unless unknown.empty?

        DEFAULTS.merge(options).each { |name, value| instance_variable_set(:"@#{name}", check(name, value)) }
      end

      # The options of the HTTP parser made from these.
      def parser
        HTTP::Parser.new(max_request_line: max_request_line, max_head_bytes: max_head_bytes, max_headers: max_headers)
      end

      private

      def check(name, value)
        case name
        when *SIZES then positive_integer(name, value)
        when *TIMES then positive_number(name, value)
        when :workers then workers_count(value)
        when :threads then positive_integer(name, value)
        when :port then port_number(value)
        when :host then host_name(value)
        else value
        end
      end

      def positive_integer(name, value)
        raise ArgumentError, "#{name} must be a positive Integer, not #{value.inspect}" unless value.is_a?(Integer) && value.positive?

        value
      end

      def positive_number(name, value)
        raise ArgumentError, "#{name} must be a positive number of seconds, not #{value.inspect}" unless value.is_a?(Numeric) && value.positive?

        value
      end

      def workers_count(value)
        raise ArgumentError, "workers must be an Integer >= 0, not #{value.inspect}" unless value.is_a?(Integer) && value >= 0

        value
      end

      def port_number(value)
        port = Integer(value, exception: false)
        raise ArgumentError, "port must be an Integer within 0..65535, not #{value.inspect}" unless port&.between?(0, 65_535)

        port
      end

      def host_name(value)
        raise ArgumentError, "host must be a String, not #{value.inspect}" unless value.is_a?(String) && !value.empty?

        value
      end
    end
  end
end
