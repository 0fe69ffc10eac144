# frozen_string_literal: true

# The answers a request gets before it reaches the app, as exceptions carrying their status.

module UringMachine
  module Rack
    # A request the server answers itself with +status+ and closes the connection after.
    class RequestError < StandardError
      attr_reader :status

      def initialize(status, message)
        super(message)
        @status = status
      end

      # The status for an HTTP::ParseError from the parser, or a RequestError.
      def self.status_of(error)
        case error
        when RequestError then error.status
        when HTTP::RequestLineTooLong then 414
        when HTTP::HeadTooLarge then 431
        else 400
        end
      end
    end
  end
end
