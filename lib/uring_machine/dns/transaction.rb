# frozen_string_literal: true

# UringMachine::DNS::Transaction: one query a DNS::Server received, and its answer.

module UringMachine
  module DNS
    # One query received by a DNS::Server, handed to its block. The block reads #questions and
    # answers with #respond (or #add_answer / #add_authority, #rcode=); a transaction nobody
    # answered gets NXDOMAIN.
    #
    #   server = UringMachine::DNS::Server.new do |t|
    #     case t.question.type
    #     when :A then t.respond("192.0.2.10", ttl: 60)
    #     when :TXT then t.respond(Resolv::DNS::Resource::IN::TXT.new("hello"))
    #     end                                    # anything else: NXDOMAIN
    #   end
    class Transaction
      # name: String without the trailing dot, as received; type: :A, :MX, ...;
      # resource_class: Resolv::DNS::Resource::IN::A, ...
      Question = Struct.new(:name, :type, :resource_class)

      DEFAULT_TTL = 300
      RCODES = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 }.freeze

      # The decoded query (Resolv::DNS::Message), the sender (Addrinfo), :udp or :tcp.
      attr_reader :query, :remote_address, :protocol, :questions, :answers, :authority, :additional

      def initialize(query, remote_address, protocol)
        @query = query
        @remote_address = remote_address
        @protocol = protocol
        @questions = query.question.map do |name, resource_class|
          Question.new(name.to_s, Types.name_of(resource_class), resource_class).freeze
        end.freeze
        @answers = []
        @authority = []
        @additional = []
        @rcode = nil
      end

      # The first question (queries carry one in practice).
      def question
        @questions.first
      end

      # Answers the first question (or +name+) with +records+: Resolv::DNS::Resource objects, or
      # IP address Strings (made A or AAAA records). Sets NOERROR, so respond() with no record
      # says "the name exists, no such records". Returns self.
      def respond(*records, ttl: DEFAULT_TTL, name: nil)
        owner = name || question&.name
        raise ArgumentError, "no question to answer; pass name:" unless owner

        records.flatten.each { |record| add_answer(owner, ttl, record) }
        @rcode ||= RCODES[:NOERROR]
        self
      end

      def add_answer(name, ttl, record)
        add(@answers, name, ttl, record)
      end

      def add_authority(name, ttl, record)
        add(@authority, name, ttl, record)
      end

      def add_additional(name, ttl, record)
        add(@additional, name, ttl, record)
      end

      # The response code: a Symbol (:NOERROR, :NXDOMAIN, :SERVFAIL, :REFUSED, ...) or an
      # Integer 0..15.
      def rcode=(code)
        @rcode = case code
                 when Symbol, String then RCODES.fetch(code.to_s.upcase.to_sym) { raise ArgumentError, "unknown rcode #{code.inspect}" }
                 when 0..15 then code
                 else raise ArgumentError, "rcode must be a Symbol or 0..15, not #{code.inspect}"
                 end
      end

      # The response code as a Symbol (:NXDOMAIN while nothing was answered).
      def rcode
        code = @rcode || RCODES[:NXDOMAIN]
        RCODES.key(code) || code
      end

      # Has the block answered (respond, add_answer, rcode=)?
      def responded?
        !@rcode.nil?
      end

      # The response as a Resolv::DNS::Message.
      def response
        message = Resolv::DNS::Message.new(@query.id)
        message.qr = 1
        message.opcode = @query.opcode
        message.aa = 1
        message.rd = @query.rd
        message.rcode = @rcode || RCODES[:NXDOMAIN]
        @query.question.each { |name, resource_class| message.add_question(name, resource_class) }
        @answers.each { |entry| message.add_answer(*entry) }
        @authority.each { |entry| message.add_authority(*entry) }
        @additional.each { |entry| message.add_additional(*entry) }
        message
      end

      private

      def add(section, name, ttl, record)
        raise ArgumentError, "TTL must be an Integer 0..2147483647, not #{ttl.inspect}" unless ttl.is_a?(Integer) && ttl.between?(0, 0x7fffffff)

        record = address_record(record) if record.is_a?(String)
        raise TypeError, "a DNS record must be a Resolv::DNS::Resource or an IP address String, not #{record.class}" unless record.is_a?(Resolv::DNS::Resource)

        text = Types.check_name(name.to_s)
        section << [Resolv::DNS::Name.create(text == "." ? "." : "#{text}."), ttl, record]
        @rcode ||= RCODES[:NOERROR]
        self
      end

      def address_record(text)
        if Resolv::IPv4::Regex.match?(text) then Types::IN::A.new(text)
        elsif Resolv::IPv6::Regex.match?(text) then Types::IN::AAAA.new(text)
        else raise ArgumentError, "not an IP address: #{text.inspect} (give other records as Resolv::DNS::Resource objects)"
        end
      end
    end
  end
end
