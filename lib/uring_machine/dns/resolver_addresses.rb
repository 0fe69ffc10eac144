# frozen_string_literal: true

# UringMachine::DNS::Resolver#addresses: the hot path behind Scheduler#address_resolve. Its
# replies are read in Rust (Machine#__dns_exchange__ with addresses: true): no
# Resolv::DNS::Message is built, only the address Strings come back. The common case (one
# name, both families answered at it, no cache) allocates a handful of objects.

module UringMachine
  module DNS
    class Resolver
      ADDRESS_CLASSES = { A: Types::IN::A, AAAA: Types::IN::AAAA }.freeze
      # What a class has at a name when it has no such records (the name exists).
      NO_ADDRESSES = [:nodata, [].freeze].freeze

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

        classes = address_classes(families)
        text = Types.check_name(name)
        return classes.map { |resource_class| loopback(text, resource_class) } if loopback_name?(text)

        names = candidates(text, name.end_with?("."))
        if names.size == 1 && !@cache # the common case: its replies read once, here
          replies = query(names.first, classes, true)
          return settled_addresses(replies) || found_addresses(address_results(names.first, classes, replies, 0), names)
        end
        found_addresses(address_lookups(names, classes), names)
      end

      private

      # The record classes for +families+; those of the default families are kept, with their
      # type codes (they are asked for on every lookup).
      def address_classes(families)
        return @default_classes[1] if @default_classes&.first.equal?(families)

        raise TypeError, "families must be an Array of :A / :AAAA, not #{families.class}" unless families.is_a?(Array)

        classes = families.map do |family|
          ADDRESS_CLASSES.fetch(family) { raise ArgumentError, "families: :A or :AAAA, not #{family.inspect}" }
        end.freeze
        @default_classes = [families, classes, type_codes(classes)].freeze if families.equal?(DNS.address_families)
        classes
      end

      # The addresses of every class that found some, in order; [] when the name exists
      # without any; else the first error that is not an NXDomain, or an NXDomain.
      def found_addresses(results, names)
        found = []
        results.each { |status, data| found.concat(data) if status == :ok }
        return found unless found.empty?

        failed = results.find { |status, _| status == :error }
        raise failed[1] if failed
        raise NXDomain.new(names: names) if results.any? { |status, _| status == :nxdomain }

        found
      end

      # The addresses in +replies+ (from #query) if each class found records or none (NOERROR,
      # no CNAME left to follow), in order; else nil.
      def settled_addresses(replies)
        found = []
        i = 0
        while i < replies.size
          reply = replies[i]
          return nil unless reply.is_a?(Array) && (reply[1] == :ok || reply[1] == :nodata)

          found.concat(reply[2])
          i += 1
        end
        found
      end

      # [status, data] for each class (IN::A, IN::AAAA), as #lookup would find it (/etc/hosts
      # aside: #addresses asked it): each class goes on to the next name of the search list
      # until it finds records or fails, the classes still looking asked together. :ok (data:
      # the addresses), :error (data: the error), :nxdomain (no name has it), or :nodata (a
      # name exists without such records).
      def address_lookups(names, classes)
        results = resolve_addresses(names.first, classes)
        return results if names.size == 1 || results.all? { |status, _| status == :ok || status == :error }

        results = results.dup
        exists = results.map { |status, _| status == :nodata }
        names.drop(1).each do |candidate|
          looking = results.each_index.select { |i| results[i][0] == :nodata || results[i][0] == :nxdomain }
          break if looking.empty?

          looking.zip(resolve_addresses(candidate, classes.values_at(*looking))) do |i, result|
            results[i] = result
            exists[i] ||= result[0] == :nodata
          end
        end
        results.each_index { |i| results[i] = NO_ADDRESSES if exists[i] && results[i][0] == :nxdomain }
        results
      end

      # [status, data] for each class at one fully qualified name, from the cache or the
      # servers (see #address_lookups); CNAME chains the server did not finish are followed
      # here.
      def resolve_addresses(fqdn, classes, depth = 0)
        return ask_addresses(fqdn, classes, depth) unless @cache

        key = fqdn.downcase
        results = classes.map { |resource_class| @cache.get([key, resource_class, :addresses]) }
        asking = results.each_index.reject { |i| results[i] }
        return results if asking.empty?

        asking.zip(ask_addresses(fqdn, classes.values_at(*asking), depth)) { |i, result| results[i] = result }
        results
      end

      def ask_addresses(fqdn, classes, depth)
        address_results(fqdn, classes, query(fqdn, classes, true), depth)
      end

      # #address_result of each of #query's +replies+, in their place.
      def address_results(fqdn, classes, replies, depth)
        i = 0
        while i < replies.size
          replies[i] = address_result(fqdn, classes[i], replies[i], depth)
          i += 1
        end
        replies
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
