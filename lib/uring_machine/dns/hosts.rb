# frozen_string_literal: true

# UringMachine::DNS::Hosts: /etc/hosts, read and re-read.

module UringMachine
  module DNS
    # /etc/hosts: "address name alias..." lines, '#' comments. Names match case-insensitively
    # (a trailing dot ignored); every address of a name is kept, in file order. Re-read when the
    # file's modification time or size changes (checked at most once a second).
    class Hosts
      DEFAULT_PATH = "/etc/hosts"
      RECHECK_SECONDS = 1.0

      attr_reader :path

      def initialize(path = DEFAULT_PATH)
        @path = path
        @lock = Thread::Mutex.new
        @stamp = nil
        @checked_at = nil
        @by_name = {}
        @by_address = {}
      end

      # Resource objects for +name+ of +resource_class+ (IN::A or IN::AAAA), or for an address's
      # reverse name (IN::PTR); nil when the file does not know it.
      def lookup(name, resource_class)
        refresh
        if resource_class == Types::IN::PTR
          address = DNS.address_of_reverse_name(name)
          names = address && @by_address[address]
          return names&.map { |n| Types::IN::PTR.new(Resolv::DNS::Name.create("#{n}.")) }
        end
        wanted = resource_class == Types::IN::AAAA ? Resolv::IPv6 : Resolv::IPv4
        addresses = @by_name[name.downcase.delete_suffix(".")]&.select { |a| a.is_a?(wanted) }
        return nil if addresses.nil? || addresses.empty?

        addresses.map { |a| resource_class.new(a) }
      end

      # The addresses (Strings) the file gives +name+, every family, in file order; nil if none.
      def addresses(name)
        refresh
        @by_name[name.downcase.delete_suffix(".")]&.map(&:to_s)
      end

      def self.parse(text)
        by_name = {}
        by_address = {}
        text.each_line do |line|
          address, *names = line.sub(/#.*/, "").split
          next if names.empty?

          parsed = parse_address(address)
          next unless parsed

          names.each do |name|
            key = name.downcase.delete_suffix(".")
            (by_name[key] ||= []) << parsed unless by_name[key]&.include?(parsed)
            (by_address[parsed.to_s] ||= []) << name.delete_suffix(".")
          end
        end
        [by_name, by_address]
      end

      def self.parse_address(text)
        if Resolv::IPv4::Regex.match?(text) then Resolv::IPv4.create(text)
        elsif Resolv::IPv6::Regex.match?(text) then Resolv::IPv6.create(text)
        end
      rescue ArgumentError
        nil
      end

      private

      def refresh
        now = DNS.clock
        return if @checked_at && now - @checked_at < RECHECK_SECONDS

        @lock.synchronize do
          @checked_at = now
          stamp = begin
            stat = File.stat(@path)
            [stat.mtime, stat.size, stat.ino]
          rescue SystemCallError
            nil
          end
          next if stamp == @stamp && @stamp

          @stamp = stamp
          text = stamp ? read : ""
          @by_name, @by_address = self.class.parse(text)
        end
      end

      def read
        File.read(@path)
      rescue SystemCallError, IOError
        ""
      end
    end

    # "1.2.3.4" for "4.3.2.1.in-addr.arpa" (and the IPv6 nibble form), else nil.
    def self.address_of_reverse_name(name)
      labels = name.to_s.downcase.delete_suffix(".").split(".")
      if labels.last(2) == %w[in-addr arpa] && labels.size == 6
        text = labels.first(4).reverse.join(".")
        Resolv::IPv4::Regex.match?(text) ? Resolv::IPv4.create(text).to_s : nil
      elsif labels.last(2) == %w[ip6 arpa] && labels.size == 34
        nibbles = labels.first(32).reverse.join
        nibbles.match?(/\A\h{32}\z/) ? Resolv::IPv6.create(nibbles.scan(/\h{4}/).join(":")).to_s : nil
      end
    end

    # The reverse-lookup name of an IP address ("4.3.2.1.in-addr.arpa"), or nil if +text+ is
    # not an address.
    def self.reverse_name(text)
      if Resolv::IPv4::Regex.match?(text) then Resolv::IPv4.create(text).to_name.to_s
      elsif Resolv::IPv6::Regex.match?(text) then Resolv::IPv6.create(text).to_name.to_s
      end
    end
  end
end
