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
      # The question types known by code, for a query read in Rust: [name, resource class].
      TYPE_CODES = Types::BY_NAME.to_h { |name, resource_class| [resource_class::TypeValue, [name, resource_class].freeze] }.freeze

      # :udp or :tcp.
      attr_reader :protocol

      # The server makes its transactions in Rust instead (UringMachine.__dns_transaction__,
      # Machine#__dns_receive__, ext/uring_machine/src/ops/dns/reply.rs), from the bytes
      # received: @packet, @sender (a packed sockaddr over UDP) and @remote_address,
      # @protocol, @question_name and @type_code (@checked_name: the same String, a valid
      # name), @answers; the query, the Question and the other sections come when asked for.
      def initialize(query, remote_address, protocol)
        @query = query
        @remote_address = remote_address
        @protocol = protocol
        @questions = query.question.map do |name, resource_class|
          Question.new(name.to_s, Types.name_of(resource_class), resource_class).freeze
        end.freeze
        @answers = []
      end

      # The decoded query (Resolv::DNS::Message; decoded when first asked for).
      def query
        @query ||= Resolv::DNS::Message.decode(@packet)
      end

      # The sender (an Addrinfo).
      def remote_address
        return @remote_address unless @remote_address.is_a?(String)

        @remote_address = Addrinfo.new(@remote_address, @remote_address.unpack1("S"), Socket::SOCK_DGRAM, 0)
      end

      def questions
        @questions ||= if TYPE_CODES.key?(@type_code)
                         [question].freeze
                       else # a type resolv names: as #initialize
                         query.question.map { |n, c| Question.new(n.to_s, Types.name_of(c), c).freeze }.freeze
                       end
      end

      # The first question (queries carry one in practice).
      def question
        @question ||= if (type, resource_class = TYPE_CODES[@type_code])
                        Question.new(@question_name, type, resource_class).freeze
                      else
                        questions.first
                      end
      end

      # The records given so far, as [Resolv::DNS::Name, ttl, Resolv::DNS::Resource].
      def answers
        resources(@answers)
      end

      def authority
        resources(@authority ||= [])
      end

      def additional
        resources(@additional ||= [])
      end

      # Answers the first question (or +name+) with +records+: Resolv::DNS::Resource objects, or
      # IP address Strings (made A or AAAA records). Sets NOERROR, so respond() with no record
      # says "the name exists, no such records". Returns self.
      def respond(*records, ttl: DEFAULT_TTL, name: nil)
        owner = name || @question_name || question&.name
        raise ArgumentError, "no question to answer; pass name:" unless owner

        records = records.flatten if records.any?(Array)
        records.each { |record| add(@answers, owner, ttl, record) }
        @rcode ||= RCODES[:NOERROR]
        self
      end

      def add_answer(name, ttl, record)
        add(@answers, name, ttl, record)
      end

      def add_authority(name, ttl, record)
        add(@authority ||= [], name, ttl, record)
      end

      def add_additional(name, ttl, record)
        add(@additional ||= [], name, ttl, record)
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
        message = Resolv::DNS::Message.new(query.id)
        message.qr = 1
        message.opcode = query.opcode
        message.aa = 1
        message.rd = query.rd
        message.rcode = @rcode || RCODES[:NXDOMAIN]
        query.question.each { |name, resource_class| message.add_question(name, resource_class) }
        answers.each { |entry| message.add_answer(*entry) }
        authority.each { |entry| message.add_authority(*entry) }
        additional.each { |entry| message.add_additional(*entry) }
        message
      end

      # The response as bytes, encoded in Rust when the server made the transaction and every
      # record is an address String (else nil: see #response). Longer than +limit+ bytes
      # (nil: no limit), only the header and question, TC set.
      def __reply__(limit)
        UringMachine.__dns_reply__(self, limit)
      end

      # The UDP sender as a packed sockaddr (a transaction __dns_receive__ made).
      def __sender__
        @sender
      end

      # The query's opcode (0: QUERY).
      def __opcode__
        @packet ? (@packet.getbyte(2) >> 3) & 0xf : @query.opcode
      end

      # Drops what the block answered and says SERVFAIL (the block failed). Returns self.
      def __servfail__
        @answers = []
        @authority = nil
        @additional = nil
        @rcode = RCODES[:SERVFAIL]
        self
      end

      private

      def add(section, name, ttl, record)
        raise ArgumentError, "TTL must be an Integer 0..2147483647, not #{ttl.inspect}" unless ttl.is_a?(Integer) && ttl.between?(0, 0x7fffffff)

        if record.is_a?(String)
          raise ArgumentError, "not an IP address: #{record.inspect} (give other records as Resolv::DNS::Resource objects)" unless UringMachine.__dns_address_family__(record)
        elsif !record.is_a?(Resolv::DNS::Resource)
          raise TypeError, "a DNS record must be a Resolv::DNS::Resource or an IP address String, not #{record.class}"
        end
        # Kept as given (name text, address String): encoded in Rust; made resolv objects only
        # when asked for (#answers, #response).
        section << [name.equal?(@checked_name) ? name : Types.check_name(name.to_s), ttl, record]
        @rcode ||= RCODES[:NOERROR]
        self
      end

      # +section+ with its entries made [Resolv::DNS::Name, ttl, Resolv::DNS::Resource] (in place).
      def resources(section)
        section.map! do |name, ttl, record|
          name = Resolv::DNS::Name.create(name == "." ? "." : "#{name}.") if name.is_a?(String)
          [name, ttl, record.is_a?(String) ? address_record(record) : record]
        end
      end

      def address_record(text)
        UringMachine.__dns_address_family__(text) == 4 ? Types::IN::A.new(text) : Types::IN::AAAA.new(text)
      end
    end
  end
end
