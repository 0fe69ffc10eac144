# frozen_string_literal: true

require_relative "dns_helper"

# What UringMachine::DNS::Server's replies say, as a client decodes them: address records (the
# replies Rust encodes) and the others (resolv's), truncation, failures, and what a UDP
# transaction tells its block.
class TestDnsServerReplies < DnsTest
  IN = Resolv::DNS::Resource::IN

  def setup
    super
    @client = udp_client
    @client.connect("127.0.0.1", zone.port)
  end

  def zone
    @zone ||= dns_server do |t|
      case t.question.name
      when "Many.Example" then t.respond(Array.new(40) { |i| "192.0.2.#{i}" }, ttl: 7)
      when "sections.example"
        t.respond("192.0.2.1", "2001:db8::1", ttl: 30)
        t.add_answer("other.example", 40, "192.0.2.2")
        t.add_authority("sections.example", 50, "192.0.2.3")
        t.add_additional("ns.example", 60, "2001:db8::3")
      when "mixed.example" then t.respond("192.0.2.1", IN::A.new("192.0.2.9"), ttl: 5)
      when "bad-record.example" then t.respond(IN::MX.new(5, "mx.example")) # a String where resolv wants a Name
      when "refused.example" then t.rcode = :REFUSED
      when "seen.example"
        @seen = [t.protocol, t.remote_address, t.query, t.questions.map(&:to_a)]
        t.respond("192.0.2.1")
      when "two.example" then @seen = t.questions.map(&:name)
      else @seen = t.question.to_a if t.question.name == "odd-type.example"
      end
    end
  end

  def ask(...)
    Resolv::DNS::Message.decode(ask_bytes(...))
  end

  def ask_bytes(name, type = IN::A, id: 1)
    @client.send(Resolv::DNS::Message.new(id).tap { |m| m.rd = 1; m.add_question(Resolv::DNS::Name.create("#{name}."), type) }.encode, 0)
    assert @client.wait_readable(10), "a reply to #{name}"
    @client.recv(65_535)
  end

  def records(section)
    section.map { |name, ttl, record| [name.to_s, ttl, record.address.to_s] }
  end

  def test_address_records_in_every_section
    reply = ask("sections.example", id: 4242)
    assert_equal [4242, 1, 1, 1, 0, 0], [reply.id, reply.qr, reply.aa, reply.rd, reply.tc, reply.rcode]
    assert_equal [["sections.example", 30, "192.0.2.1"], ["sections.example", 30, "2001:db8::1"], ["other.example", 40, "192.0.2.2"]],
                 records(reply.answer)
    assert_equal [["sections.example", 50, "192.0.2.3"]], records(reply.authority)
    assert_equal [["ns.example", 60, "2001:db8::3"]], records(reply.additional)
    assert_equal [IN::A, IN::AAAA, IN::A], reply.answer.map { |_, _, record| record.class }
  end

  def test_addresses_and_other_records_together
    reply = ask("mixed.example")
    assert_equal [["mixed.example", 5, "192.0.2.1"], ["mixed.example", 5, "192.0.2.9"]], records(reply.answer)
  end

  def test_a_large_answer_is_truncated_over_udp_and_whole_over_tcp
    bytes = ask_bytes("Many.Example")
    # (resolv 0.7, Ruby 4.0's, does not decode the sections of a message with TC set)
    assert_equal [1, 1, 0, 0, 0], [Resolv::DNS::Message.decode(bytes).tc, *bytes.unpack("x4n4")], "TC, the question only"
    assert_equal "\x04Many\x07Example\x00".b, bytes.byteslice(12, 14), "the question as asked"
    assert_equal 1, zone.server.stats[:truncated]
    answers = resolver([zone.address]).addresses("Many.Example", families: [:A])
    assert_equal Array.new(40) { |i| "192.0.2.#{i}" }, answers, "asked again over TCP"
    assert_equal 1, zone.server.stats[:tcp]
  end

  def test_a_record_that_does_not_encode_is_servfail
    assert_equal Resolv::DNS::RCode::ServFail, ask("bad-record.example").rcode
    assert_equal 1, zone.server.stats[:errors]
    assert_kind_of NoMethodError, zone.server.last_error
    assert_equal [["sections.example", 50, "192.0.2.3"]], records(ask("sections.example").authority), "still serving"
  end

  def test_rcode_and_nxdomain
    assert_equal [Resolv::DNS::RCode::Refused, 0], ask("refused.example").then { |r| [r.rcode, r.answer.size] }
    assert_equal Resolv::DNS::RCode::NXDomain, ask("nothing.example").rcode
  end

  def test_what_a_udp_transaction_tells_its_block
    ask("seen.example", id: 77)
    protocol, address, query, questions = @seen
    assert_equal :udp, protocol
    assert_kind_of Addrinfo, address
    assert_equal [@client.local_address.ip_address, @client.local_address.ip_port, Socket::SOCK_DGRAM],
                 [address.ip_address, address.ip_port, address.socktype]
    assert_kind_of Resolv::DNS::Message, query
    assert_equal [77, "seen.example"], [query.id, query.question.first.first.to_s]
    assert_equal [["seen.example", :A, IN::A]], questions
  end

  def test_a_query_of_two_questions_is_read_by_resolv
    query = Resolv::DNS::Message.new(5)
    %w[two.example. second.example.].each { |name| query.add_question(Resolv::DNS::Name.create(name), IN::A) }
    @client.send(query.encode, 0)
    assert @client.wait_readable(10), "a reply"
    reply = Resolv::DNS::Message.decode(@client.recv(512))
    assert_equal [5, Resolv::DNS::RCode::NXDomain, %w[two.example second.example]],
                 [reply.id, reply.rcode, reply.question.map { |name, _| name.to_s }]
    assert_equal %w[two.example second.example], @seen
  end

  def test_over_ipv6
    skip_with_reason("no IPv6 loopback here") unless Socket.ip_address_list.any?(&:ipv6_loopback?)
    seen = nil
    server = dns_server(host: "::1") do |t|
      seen = t.remote_address
      t.respond("2001:db8::5", ttl: 9)
    end
    assert_equal ["2001:db8::5"], resolver(["[::1]:#{server.port}"]).addresses("v6.example", families: [:AAAA])
    assert_equal ["::1", Socket::AF_INET6, Socket::SOCK_DGRAM], [seen.ip_address, seen.afamily, seen.socktype]
  end

  def test_a_type_without_a_name_here_is_named_as_resolv_names_it
    generic = Resolv::DNS::Resource.get_class(65_280, IN::ClassValue) # private use: unknown to resolv
    assert_equal Resolv::DNS::RCode::NXDomain, ask("odd-type.example", generic).rcode
    name, type, resource_class = @seen
    # (resolv 0.7, Ruby 3.4's, makes an anonymous class for the type at each decode)
    assert_equal ["odd-type.example", :Type65280_Class1, 65_280], [name, type, resource_class::TypeValue]
  end
end
