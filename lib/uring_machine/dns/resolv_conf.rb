# frozen_string_literal: true

# UringMachine::DNS::ResolvConf: /etc/resolv.conf, with glibc's defaults and limits.

module UringMachine
  module DNS
    # What /etc/resolv.conf says, with glibc's defaults and limits: nameserver (up to 3; none
    # means 127.0.0.1), search / domain (the last one wins; without either, the domain of the
    # host name), options ndots:n (default 1, at most 15), timeout:n (seconds, default 5, at most
    # 30), attempts:n (default 2, at most 5), rotate. Unknown lines and options are ignored.
    class ResolvConf
      DEFAULT_PATH = "/etc/resolv.conf"
      PORT = 53
      MAX_NAMESERVERS = 3

      attr_reader :nameservers, :search, :ndots, :timeout, :attempts, :rotate

      # Parses the file at +path+; a missing or unreadable file gives the defaults.
      def self.load(path = DEFAULT_PATH)
        text = begin
          File.read(path)
        rescue SystemCallError, IOError
          ""
        end
        parse(text)
      end

      def self.parse(text)
        new.tap { |conf| conf.send(:parse, text) }
      end

      # A nameserver as [host, port]: "192.0.2.1", "192.0.2.1:5300", "[2001:db8::1]:53",
      # "2001:db8::1", ["192.0.2.1", 5300].
      def self.nameserver(spec)
        host, port = case spec
                     when Array then spec
                     when String
                       if (m = spec.match(/\A\[([^\]]+)\](?::(\d+))?\z/)) then [m[1], m[2]]
                       elsif spec.count(":") == 1 then spec.split(":")
                       else [spec, nil]
                       end
                     else raise TypeError, "nameserver must be a String or [host, port], not #{spec.class}"
                     end
        port = Integer(port || PORT)
        raise ArgumentError, "nameserver port out of range: #{port}" unless port.between?(1, 65_535)
        raise ArgumentError, "nameserver must be an IP address, not #{host.inspect}" unless DNS.ip_address?(host.to_s)

        [host.to_s, port].freeze
      end

      def initialize
        @nameservers = [["127.0.0.1", PORT].freeze]
        @search = default_search
        @ndots = 1
        @timeout = 5
        @attempts = 2
        @rotate = false
      end

      private

      def parse(text)
        servers = []
        text.each_line do |line|
          words = line.sub(/[#;].*/, "").split
          next if words.empty?

          keyword, *args = words
          case keyword
          when "nameserver" then add_nameserver(servers, args.first)
          when "search" then @search = args.map { |d| d.delete_suffix(".") }.reject(&:empty?).freeze
          when "domain" then @search = [args.first.to_s.delete_suffix(".")].reject(&:empty?).freeze
          when "options" then args.each { |option| apply_option(option) }
          end
        end
        @nameservers = servers.freeze unless servers.empty?
      end

      def add_nameserver(servers, address)
        return if address.nil? || servers.size >= MAX_NAMESERVERS

        servers << [address, PORT].freeze if DNS.ip_address?(address)
      end

      def apply_option(option)
        name, value = option.split(":", 2)
        number = value && Integer(value, 10, exception: false)
        case name
        when "ndots" then @ndots = number.clamp(0, 15) if number
        when "timeout" then @timeout = number.clamp(1, 30) if number
        when "attempts" then @attempts = number.clamp(1, 5) if number
        when "rotate" then @rotate = true
        end
      end

      def default_search
        domain = Socket.gethostname.split(".", 2)[1]
        domain && !domain.empty? ? [domain].freeze : [].freeze
      rescue SystemCallError
        [].freeze
      end
    end

    IPV4 = Resolv::IPv4::Regex # anchored
    IPV6 = Resolv::IPv6::Regex
    # A letter past "f" (but the "x" of inet_aton's "0x7f.1") before any "%" (an IPv6 zone):
    # a name, never an address; cheaper to tell than matching IPV6 (a host name's common case).
    NOT_NUMERIC = /\A[^%]*[g-wyzG-WYZ_]/

    # Is +text+ an IPv4 or IPv6 address (an IPv6 one may carry a %zone)?
    def self.ip_address?(text)
      return false if NOT_NUMERIC.match?(text)

      IPV4.match?(text) || IPV6.match?(text.sub(/%[\w.-]+\z/, ""))
    end
  end
end
