# frozen_string_literal: true

# UringMachine::DNS's errors: Error, NXDomain, ServerFailure, TimeoutError.

module UringMachine
  module DNS
    # Every resolution failure but the timeout; a Resolv::ResolvError, as Resolv raises.
    class Error < Resolv::ResolvError; end

    # The name does not exist (NXDOMAIN), under every name the search list made of it.
    class NXDomain < Error
      attr_reader :names

      def initialize(message = nil, names: [])
        @names = names
        super(message || "no such domain name: #{names.join(', ')}")
      end
    end

    # Every server that answered refused or failed the query (SERVFAIL, REFUSED, NOTIMP, ...),
    # or a reply made no sense (a CNAME loop).
    class ServerFailure < Error; end

    # No server answered in time. A Resolv::ResolvTimeout (so a Timeout::Error); #servers
    # lists the "host:port" of every server tried.
    class TimeoutError < Resolv::ResolvTimeout
      attr_reader :servers

      def initialize(message = nil, servers: [])
        @servers = servers
        super(message)
      end
    end
  end
end
