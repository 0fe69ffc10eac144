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
      # "fe80::1%lo") come back as they are; names go to +resolver+. Any failure gives [], which
      # Ruby turns into the SocketError getaddrinfo would have raised.
      def address_resolve(host, resolver = default_resolver)
        numeric = numeric_addresses(host)
        return numeric if numeric

        resolver.addresses(host).uniq
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

      # Runs the callables at once (all but the last in fibers of their own) and returns
      # [true, value] or [false, error] for each, in order.
      def concurrently(jobs)
        guarded = jobs.map do |job|
          lambda do
            [true, job.call]
          rescue StandardError => e
            [false, e]
          end
        end
        return guarded.map(&:call) if guarded.size < 2

        m = machine
        fibers = guarded[0...-1].map { |job| m.spin(&job) }
        last = guarded.last.call
        [*fibers.map { |f| m.join(f) }, last]
      end

      private

      def numeric_addresses(host)
        return nil if host.empty?

        Addrinfo.getaddrinfo(host, nil, nil, :STREAM, nil, Socket::AI_NUMERICHOST).map(&:ip_address).uniq
      rescue SocketError
        nil
      end
    end
  end
end
