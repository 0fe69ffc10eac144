# frozen_string_literal: true

# What the gem changes in Addrinfo's and Socket's name lookups (see core_ext.rb for how and
# when it is installed).

require "socket"

module UringMachine
  # Scheduler#address_resolve is given only the host name, so a lookup for AF_INET alone would
  # ask the DNS for AAAA records too, which getaddrinfo does not. Addrinfo.getaddrinfo and
  # Socket.getaddrinfo keep the family asked for in a fiber-local for the call, and the hook
  # asks for A, or AAAA, only.
  module LookupFamily
    KEY = :__uring_machine_lookup_family__
    A = [:A].freeze
    AAAA = [:AAAA].freeze
    # By the family's number and by every name getaddrinfo takes for it (:INET, "AF_INET6", ...).
    names = %w[INET AF_INET PF_INET].to_h { |n| [n, A] }.merge(%w[INET6 AF_INET6 PF_INET6].to_h { |n| [n, AAAA] })
    FAMILIES = names.merge(names.transform_keys(&:to_sym), Socket::AF_INET => A, Socket::AF_INET6 => AAAA).freeze

    class << self
      # Runs the block with the records a lookup for +family+ asks for (see families) kept
      # for the current fiber.
      def asking(family)
        families = families(family)
        return yield unless families

        outer = Thread.current[KEY]
        Thread.current[KEY] = families
        begin
          yield
        ensure
          Thread.current[KEY] = outer
        end
      end

      # The address records a lookup for +family+ (as getaddrinfo takes it: an Integer,
      # :INET, "AF_INET6", ...) asks for: [:A], [:AAAA], or nil for any family.
      def families(family)
        FAMILIES[family]
      end

      # The families the current fiber's getaddrinfo asked for, or nil (any).
      def wanted
        Thread.current[KEY]
      end

    end
  end

  # Addrinfo.getaddrinfo's family, for address_resolve.
  module AddrinfoLookupFamily
    def getaddrinfo(host, service, family = nil, *rest, **options)
      LookupFamily.asking(family) { super }
    end
  end

  # Socket.getaddrinfo's family, for address_resolve.
  module SocketLookupFamily
    def getaddrinfo(host, service, family = nil, *rest, **options)
      LookupFamily.asking(family) { super }
    end
  end

  CoreExt.declare(
    Addrinfo, AddrinfoLookupFamily, singleton: true, methods: %i[getaddrinfo], at: :first_scheduler,
    in_place: :while_a_scheduler_is_open,
    why: "tells address_resolve the family asked for: AF_INET asks the DNS for A records only, AF_INET6 for AAAA only"
  )
  CoreExt.declare(
    Socket, SocketLookupFamily, singleton: true, methods: %i[getaddrinfo], at: :first_scheduler,
    in_place: :while_a_scheduler_is_open,
    why: "tells address_resolve the family asked for, as Addrinfo.getaddrinfo does"
  )
end
