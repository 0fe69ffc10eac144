# frozen_string_literal: true

# UringMachine::DNS::Resolver: the stub resolver (hosts, cache, search list, nameservers).

module UringMachine
  module DNS
    # A stub resolver: /etc/hosts first, then the nameservers of /etc/resolv.conf (or those
    # given), over the calling thread's ring. Each keyword overrides what the file says:
    #
    #   Resolver.new                                     # the system's configuration
    #   Resolver.new(nameservers: ["127.0.0.1:5300"], search: [], timeout: 0.5, attempts: 1,
    #                hosts: false, cache: false)        # explicit; no file consulted
    #
    # nameservers: "host", "host:port", "[v6]:port" or [host, port], tried in order (or from a
    # rotating start with rotate: true) for each of +attempts+ rounds, each waiting +timeout+
    # seconds; a server that refuses (ECONNREFUSED), fails (SERVFAIL, REFUSED, ...) or stays
    # silent passes the query to the next. search/ndots: as resolv.conf(5). hosts: a path or
    # false. resolv_conf: a path, or false for the defaults. cache: a Cache, or false.
    #
    # A Resolver may be shared by threads; each lookup uses the calling thread's Machine (the
    # Scheduler's under Fiber.set_scheduler), so it waits in that thread's ring.
    class Resolver
      NAME_CHAIN_LIMIT = 8
      ANSWERED = [Resolv::DNS::RCode::NoError, Resolv::DNS::RCode::NXDomain].freeze
      RECONFIGURE_SECONDS = 1.0
      LOOPBACK_NAME = /(?:\A|\.)localhost\z/i

      attr_reader :cache, :hosts

      def initialize(nameservers: nil, search: nil, ndots: nil, timeout: nil, attempts: nil, rotate: nil,
                     hosts: Hosts::DEFAULT_PATH, resolv_conf: ResolvConf::DEFAULT_PATH, cache: Cache.new)
        @overrides = { nameservers: nameservers && check_nameservers(nameservers), search: search && check_search(search),
                       ndots: ndots && check_count(:ndots, ndots, 0), timeout: timeout && check_timeout(timeout),
                       attempts: attempts && check_count(:attempts, attempts, 1),
                       rotate: rotate.nil? ? nil : (rotate ? true : false) }.compact
        @resolv_conf = resolv_conf || nil
        @hosts = hosts ? Hosts.new(hosts) : nil
        @cache = cache || nil
        @rotation = 0
        @config_lock = Thread::Mutex.new
        @config = nil
        @config_checked_at = nil
        @config_stamp = nil
        configuration
      end

      # The effective settings: {nameservers:, search:, ndots:, timeout:, attempts:, rotate:}.
      def configuration
        return @config if @config && @resolv_conf.nil?

        now = DNS.clock
        return @config if @config && now - @config_checked_at < RECONFIGURE_SECONDS

        @config_lock.synchronize do
          @config_checked_at = now
          stamp = @resolv_conf && file_stamp(@resolv_conf)
          if @config.nil? || stamp != @config_stamp
            @config_stamp = stamp
            conf = @resolv_conf ? ResolvConf.load(@resolv_conf) : ResolvConf.new
            @config = { nameservers: conf.nameservers, search: conf.search, ndots: conf.ndots, timeout: conf.timeout,
                        attempts: conf.attempts, rotate: conf.rotate }.merge(@overrides).freeze
          end
          @config
        end
      end

      # Resolv::DNS::Resource objects of +type+ for +name+ (see DNS.lookup): /etc/hosts for A,
      # AAAA and PTR; "localhost" and "*.localhost" are loopback (RFC 6761) if hosts does not say
      # otherwise; then each name of the search list in turn (a name ending in "." is taken as
      # it is). CNAMEs are followed; the records of the name at the end of the chain are
      # returned ([] if it has none of this type). NXDomain when no candidate name exists.
      def lookup(name, type = :A)
        resource_class = Types.resource_class(type)
        absolute = name.is_a?(String) && name.end_with?(".")
        if resource_class == Types::IN::PTR && name.is_a?(String) && (reverse = DNS.reverse_name(name))
          name = reverse
          absolute = true
        end
        text = Types.check_name(name)
        local = local_answer(text, resource_class)
        return local if local

        names = candidates(text, absolute)
        exists = false
        names.each do |candidate|
          status, records = resolve(candidate, resource_class)
          return records if status == :ok
          exists ||= status == :nodata
        end
        return [] if exists

        raise NXDomain.new(names: names)
      end

      def inspect
        config = configuration
        servers = config[:nameservers].map { |h, p| server_label([h, p]) }
        "#<#{self.class} nameservers=#{servers.join(',')} search=#{config[:search].inspect} ndots=#{config[:ndots]} " \
          "timeout=#{config[:timeout]} attempts=#{config[:attempts]}#{' rotate' if config[:rotate]}>"
      end

      private

      def local_answer(text, resource_class)
        return nil unless [Types::IN::A, Types::IN::AAAA, Types::IN::PTR].include?(resource_class)

        found = @hosts&.lookup(text, resource_class)
        return found if found
        return nil if resource_class == Types::IN::PTR

        address = loopback(text, resource_class)
        address && [resource_class.new(address)]
      end

      # "127.0.0.1" or "::1" for "localhost" and "*.localhost" (RFC 6761), else nil.
      def loopback(text, resource_class)
        return nil unless loopback_name?(text)

        resource_class == Types::IN::A ? "127.0.0.1" : "::1"
      end

      def loopback_name?(text)
        LOOPBACK_NAME.match?(text)
      end

      def candidates(text, absolute)
        return [text] if absolute || text == "."

        config = configuration
        return [text] if config[:search].empty?

        searched = config[:search].map { |domain| "#{text}.#{domain}" }
        text.count(".") >= config[:ndots] ? [text, *searched] : [*searched, text]
      end

      # [:ok, records] | [:nodata, []] | [:nxdomain, nil] for one fully qualified name, from the
      # cache or the servers; CNAME chains the server did not finish are followed here.
      def resolve(fqdn, resource_class, depth = 0)
        key = [fqdn.downcase, resource_class]
        cached = @cache&.get(key)
        return cached if cached

        reply = query(fqdn, [resource_class], false).first
        raise reply if reply.is_a?(Exception)

        reply = decode(reply[1])
        status, data, ttl = interpret(fqdn, resource_class, reply)
        if status == :follow
          raise ServerFailure, "CNAME chain of #{fqdn} longer than #{NAME_CHAIN_LIMIT} names" if depth >= NAME_CHAIN_LIMIT

          return resolve(data, resource_class, depth + 1) # the target's own entry holds its TTL
        end
        result = [status, data].freeze
        @cache&.set(key, result, ttl)
        result
      end

      # What the reply says about +fqdn+: [:ok, records, ttl], [:nodata, [], ttl],
      # [:nxdomain, nil, ttl] or [:follow, cname_target, ttl].
      def interpret(fqdn, resource_class, reply)
        current = absolute_name(fqdn)
        ttl = nil
        seen = [current]
        loop do
          records = reply.answer.select { |owner, _, data| owner == current && wanted?(data, resource_class) }
          unless records.empty?
            ttl = [ttl, *records.map { |_, record_ttl, _| record_ttl }].compact.min
            return [:ok, records.map(&:last).freeze, ttl]
          end
          break if resource_class == Types::IN::CNAME

          cname = reply.answer.find { |owner, _, data| owner == current && data.is_a?(Types::IN::CNAME) }
          break unless cname

          target = cname[2].name
          target = absolute_name(target.to_s) unless target.absolute?
          raise ServerFailure, "CNAME loop at #{target} resolving #{fqdn}" if seen.include?(target)

          seen << target
          ttl = [ttl, cname[1]].compact.min
          current = target
        end

        negative = negative_ttl(reply)
        return [:nxdomain, nil, negative] if reply.rcode == Resolv::DNS::RCode::NXDomain
        return [:follow, current.to_s, ttl] if seen.size > 1 && negative.nil?

        [:nodata, [].freeze, negative]
      end

      def wanted?(data, resource_class)
        resource_class == Types::IN::ANY || data.instance_of?(resource_class)
      end

      # RFC 2308: the SOA record of the authority section, min(its TTL, its minimum).
      def negative_ttl(reply)
        soa = reply.authority.find { |_, _, data| data.is_a?(Types::IN::SOA) }
        soa && [soa[1], soa[2].minimum].min
      end

      def absolute_name(text)
        Resolv::DNS::Name.create(text == "." ? "." : "#{text}.")
      end

      # Per class in +classes+ (asked together, on one socket: A and AAAA in flight at once),
      # the reply of the first server that gives one (NOERROR or NXDOMAIN): from
      # Machine#__dns_exchange__, [rcode, bytes], or with +addresses+ what the reply says of the
      # name's addresses; or, if none does, the error to raise (TimeoutError, ServerFailure).
      def query(fqdn, classes, addresses)
        config = configuration
        servers = ordered(config)
        types = type_codes(classes)
        machine = DNS.machine
        host, port = servers.first
        outcomes = machine.__dns_exchange__(host, port, fqdn, types, config[:timeout], addresses)
        return outcomes if answered?(outcomes) # the common case

        ask = ->(server, asking) { machine.__dns_exchange__(server[0], server[1], fqdn, asking, config[:timeout], addresses) }
        query_on(ask, fqdn, classes, types, config, servers, outcomes)
      end

      # Is every outcome of Machine#__dns_exchange__ an answer (NOERROR or NXDOMAIN)?
      def answered?(outcomes)
        i = 0
        while i < outcomes.size
          outcome = outcomes[i]
          return false unless outcome.is_a?(Array) && ANSWERED.include?(outcome[0])
          i += 1
        end
        true
      end

      # The type codes of +classes+ (those of the default address families are kept).
      def type_codes(classes)
        return @default_classes[2] if @default_classes && @default_classes[1].equal?(classes)

        classes.map { |resource_class| resource_class::TypeValue }
      end

      # The rest of #query, after the first server's +first+ outcomes: the questions that got
      # no answer go to the next server (+ask+ asks one), round after round.
      def query_on(ask, fqdn, classes, types, config, servers, first)
        replies = Array.new(classes.size)
        open = classes.each_index.to_a
        problems = {} # index => [silent servers, failures]
        (servers * config[:attempts]).each_with_index do |server, round|
          outcomes = first if round.zero?
          outcomes ||= ask.call(server, open.map { |i| types[i] })
          open = open.zip(outcomes).filter_map do |i, outcome|
            failure = failure_text(outcome)
            if outcome && !failure
              replies[i] = outcome
              next
            end
            silent, failures = problems[i] ||= [[], []]
            outcome ? failures << "#{server_label(server)}: #{failure}" : silent << server_label(server)
            i
          end
          return replies if open.empty?
        end
        open.each { |i| replies[i] = query_error(fqdn, classes[i], config, problems[i][0].uniq, problems[i][1]) }
        replies
      end

      # What is wrong with a server's outcome (see Machine#__dns_exchange__), nil if it is an
      # answer (NOERROR, NXDOMAIN) or no reply.
      def failure_text(outcome)
        case outcome
        when Integer then SystemCallError.new(nil, outcome).message
        when String then outcome
        when Array then ANSWERED.include?(outcome[0]) ? nil : rcode_name(outcome[0])
        end
      end

      def query_error(fqdn, resource_class, config, silent, failures)
        what = "#{fqdn} #{Types.name_of(resource_class)}"
        if failures.empty?
          return TimeoutError.new("no answer for #{what} from #{silent.join(', ')} " \
                                  "(#{config[:attempts]} attempt(s), #{config[:timeout]} s each)", servers: silent)
        end

        failures << "#{silent.join(', ')}: no answer in #{config[:timeout]} s" unless silent.empty?
        ServerFailure.new("#{what}: #{failures.uniq.join('; ')}")
      end

      def decode(bytes)
        Resolv::DNS::Message.decode(bytes)
      rescue StandardError => e # Resolv::DNS::DecodeError and whatever malformed input provokes
        raise ServerFailure, "undecodable reply: #{e.message}"
      end

      def ordered(config)
        servers = config[:nameservers]
        return servers unless config[:rotate] && servers.size > 1

        @rotation = (@rotation + 1) % servers.size
        servers.rotate(@rotation)
      end

      def rcode_name(rcode)
        Resolv::DNS::RCode.constants.find { |c| Resolv::DNS::RCode.const_get(c) == rcode }&.to_s&.upcase || "RCODE #{rcode}"
      end

      def server_label((host, port))
        host.include?(":") ? "[#{host}]:#{port}" : "#{host}:#{port}"
      end

      def check_nameservers(list)
        list = [list] if list.is_a?(String)
        raise TypeError, "nameservers must be an Array of \"host[:port]\" or [host, port], not #{list.class}" unless list.is_a?(Array)
        raise ArgumentError, "nameservers must not be empty" if list.empty?

        list.map { |spec| ResolvConf.nameserver(spec) }.freeze
      end

      def check_search(list)
        raise TypeError, "search must be an Array of domain names, not #{list.class}" unless list.is_a?(Array)

        list.map { |domain| Types.check_name(domain) }.freeze
      end

      def check_count(name, value, minimum)
        return value if value.is_a?(Integer) && value >= minimum

        raise ArgumentError, "#{name} must be an Integer >= #{minimum}, not #{value.inspect}"
      end

      def check_timeout(value)
        return value if value.is_a?(Numeric) && value.positive?

        raise ArgumentError, "timeout must be a positive number of seconds, not #{value.inspect}"
      end

      def file_stamp(path)
        stat = File.stat(path)
        [stat.mtime, stat.size, stat.ino]
      rescue SystemCallError
        nil
      end
    end
  end
end
