# frozen_string_literal: true

# UringMachine::DNS.address_resolve, behind Scheduler#address_resolve: getaddrinfo's answer,
# address families and their order included.

module UringMachine
  module DNS
    ADDRESS_FAMILIES_TTL = 10.0
    @address_families = nil
    @address_families_at = nil

    class << self
      # Scheduler#address_resolve: getaddrinfo's answer for what users pass to TCPSocket.new &c.
      # Numeric addresses (getaddrinfo's own parsing with AI_NUMERICHOST: "127.1", "::1",
      # "fe80::1%lo") come back as they are; names go to +resolver+, which asks for +families+
      # (nil: address_families). Any failure gives [], which Ruby turns into the SocketError
      # getaddrinfo would have raised.
      def address_resolve(host, resolver = default_resolver, families: nil)
        numeric = numeric_addresses(host)
        return numeric if numeric

        resolver.addresses(host, families: families).uniq
      rescue Resolv::ResolvError, Resolv::ResolvTimeout, ArgumentError
        []
      end

      # Which address records to ask for, in order of preference, like getaddrinfo with
      # AI_ADDRCONFIG and RFC 6724's ordering: AAAA only when an interface has an IPv6 address
      # other than loopback and link-local, and first only when one of them is global (not a
      # unique-local fc00::/7 or site-local one, from which global IPv6 destinations rank below
      # IPv4); A when an interface has a non-loopback IPv4 address, or when there is no
      # non-loopback address at all. Re-read every 10 seconds.
      def address_families
        now = DNS.clock
        return @address_families if @address_families_at && now - @address_families_at < ADDRESS_FAMILIES_TTL

        list = Socket.ip_address_list.reject { |a| a.ipv4_loopback? || a.ipv6_loopback? }
        v6 = list.select { |a| a.ipv6? && !a.ipv6_linklocal? }
        global_v6 = v6.any? { |a| !a.ipv6_unique_local? && !a.ipv6_sitelocal? }
        v4 = list.any?(&:ipv4?) || v6.empty?
        families = v4 ? [:A] : []
        if global_v6 then families.unshift(:AAAA)
        elsif v6.any? then families.push(:AAAA)
        end
        @address_families_at = now
        @address_families = families.freeze
      end

      # The Machine a lookup waits on: the current scheduler's if it is ours, else the thread's.
      def machine
        scheduler = Fiber.scheduler
        scheduler.is_a?(UringMachine::Scheduler) ? scheduler.machine : UringMachine.machine
      end

      private

      # getaddrinfo says a name is not numeric by raising, which costs more than the lookup's
      # own work: NOT_NUMERIC tells most names apart first.
      def numeric_addresses(host)
        return nil if host.empty? || NOT_NUMERIC.match?(host)

        Addrinfo.getaddrinfo(host, nil, nil, :STREAM, nil, Socket::AI_NUMERICHOST).map(&:ip_address).uniq
      rescue SocketError
        nil
      end
    end
  end
end
