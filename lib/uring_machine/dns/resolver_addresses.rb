# frozen_string_literal: true

# UringMachine::DNS::Resolver#addresses: the hot path behind Scheduler#address_resolve. Its
# replies are read in Rust (Machine#__dns_exchange__ with addresses: true): no
# Resolv::DNS::Message is built, only the address Strings come back.

module UringMachine
  module DNS
    class Resolver
      ADDRESS_CLASSES = { A: Types::IN::A, AAAA: Types::IN::AAAA }.freeze

      # The IP addresses (Strings) of +name+: the name itself if it is one, /etc/hosts, else A
      # and AAAA asked together (one socket, both queries in flight at once). +families+:
      # which of :A / :AAAA to ask for and in what order; by default the AI_ADDRCONFIG-like
      # DNS.address_families (IPv6 first only when this host has a global IPv6 address).
      # NXDomain if the name does not exist; if no family answered and one failed, that error.
      def addresses(name, families: nil)
        raise TypeError, "host name must be a String, not #{name.class}" unless name.is_a?(String)
        return [name] if DNS.ip_address?(name)

        families ||= DNS.address_families
        if @hosts && (known = @hosts.addresses(name))
          order = families.map { |f| f == :AAAA ? Resolv::IPv6::Regex : Resolv::IPv4::Regex }
          return known.sort_by.with_index { |a, i| [order.index { |re| re.match?(a) } || order.size, i] }
        end

        outcomes, names = address_lookups(name, address_classes(families))
        found = outcomes.flat_map { |ok, value| ok ? value : [] }
        return found unless found.empty?

        errors = outcomes.reject(&:first).map { |_, error| error || NXDomain.new(names: names) }
        return [] if errors.empty?
        raise errors.find { |e| !e.is_a?(NXDomain) } || errors.first
      end

      private

      def address_classes(families)
        raise TypeError, "families must be an Array of :A / :AAAA, not #{families.class}" unless families.is_a?(Array)

        families.map do |family|
          ADDRESS_CLASSES.fetch(family) { raise ArgumentError, "families: :A or :AAAA, not #{family.inspect}" }
        end
      end

      # [true, addresses] or [false, error] for each class (IN::A, IN::AAAA), as #lookup would
      # give for each (/etc/hosts aside: #addresses asked it): localhost, then the search
      # list's names in turn, each class going on to the next name until it finds records, the
      # classes still looking asked together. The error is nil for NXDOMAIN under every name
      # (an NXDomain is made only when raised); the names asked come second.
      def address_lookups(name, classes)
        text = Types.check_name(name)
        return [classes.map { |resource_class| [true, [loopback(text, resource_class)]] }, nil] if loopback_name?(text)

        outcomes = Array.new(classes.size)
        looking = classes.each_index.to_a

        names = candidates(text, name.end_with?("."))
        exists = []
        names.each do |candidate|
          break if looking.empty?

          results = resolve_addresses(candidate, looking.map { |i| classes[i] })
          looking = looking.zip(results).filter_map do |i, (status, data)|
            case status
            when :ok then outcomes[i] = [true, data]
            when :error then outcomes[i] = [false, data]
            else
              exists << i if status == :nodata
              next i
            end
            nil
          end
        end
        looking.each { |i| outcomes[i] = exists.include?(i) ? [true, []] : [false, nil] }
        [outcomes, names]
      end

      # [status, addresses] for each class at one fully qualified name, from the cache or the
      # servers: :ok, :nodata, :nxdomain, or :error with the error; CNAME chains the server did
      # not finish are followed here.
      def resolve_addresses(fqdn, classes, depth = 0)
        key = fqdn.downcase
        results = classes.map { |resource_class| @cache&.get([key, resource_class, :addresses]) }
        asking = results.each_index.reject { |i| results[i] }
        return results if asking.empty?

        replies = query(fqdn, asking.map { |i| classes[i] }, true)
        asking.zip(replies) { |i, reply| results[i] = address_result(fqdn, classes[i], reply, depth) }
        results
      end

      def address_result(fqdn, resource_class, reply, depth)
        return [:error, reply] if reply.is_a?(Exception)

        _rcode, status, data, ttl = reply
        case status
        when :loop then return [:error, ServerFailure.new("CNAME loop at #{data} resolving #{fqdn}")]
        when :follow
          if depth >= NAME_CHAIN_LIMIT
            return [:error, ServerFailure.new("CNAME chain of #{fqdn} longer than #{NAME_CHAIN_LIMIT} names")]
          end

          return resolve_addresses(data, [resource_class], depth + 1).first # the target's entry holds its TTL
        end
        result = [status, data.freeze].freeze
        @cache&.set([fqdn.downcase, resource_class, :addresses], result, ttl)
        result
      end
    end
  end
end
