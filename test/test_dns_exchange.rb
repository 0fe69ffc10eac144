# frozen_string_literal: true

require_relative "dns_helper"

# Resolver#addresses (Scheduler#address_resolve's path): its queries go out together and are
# read in Rust (Machine#__dns_exchange__), with the checks the wire needs.
class TestDnsExchange < DnsTest
  IN = Resolv::DNS::Resource::IN

  # The server answers the A query only once the AAAA query has come: a client that asked one
  # after the other would get no A answer within its timeout.
  def test_a_and_aaaa_are_in_flight_at_once
    aaaa_came = UringMachine::Mailbox.new
    asked = []
    server = dns_server do |t|
      asked << t.question.type
      if t.question.type == :AAAA
        aaaa_came.push(true)
        t.respond("2001:db8::7")
      else
        aaaa_came.receive
        t.respond("192.0.2.7")
      end
    end
    r = resolver([server.address], cache: false)
    assert_equal ["192.0.2.7", "2001:db8::7"], r.addresses("both.test", families: %i[A AAAA])
    assert_equal %i[A AAAA], asked.sort
  end

  def test_a_truncated_answer_is_asked_again_over_tcp
    many = Array.new(60) { |i| "192.0.2.#{i + 1}" }
    protocols = []
    server = dns_server do |t|
      protocols << t.protocol
      t.question.type == :A ? t.respond(*many) : t.respond
    end
    r = resolver([server.address], cache: false)
    assert_equal many, r.addresses("many.test", families: %i[A AAAA])
    assert_includes protocols, :tcp
    assert_equal 1, server.server.stats[:truncated]
  end

  # A server that breaks the 512-byte limit of UDP without setting TC: the datagram, longer
  # than the client's buffer, counts as truncated, and the answer comes over TCP.
  def test_an_oversized_datagram_is_asked_again_over_tcp
    udp, tcp = udp_and_tcp_on_one_port
    port = udp.local_address.ip_port
    reply = lambda do |query, prefix|
      m = Resolv::DNS::Message.new(query.id)
      m.qr = 1
      name, type = query.question.first
      m.add_question(name, type)
      40.times { |i| m.add_answer(name, 60, IN::A.new("#{prefix}.#{i + 1}")) }
      m.encode
    end
    server_thread = Thread.new do
      data, sender = udp.recvfrom(512)
      udp.send(reply.call(Resolv::DNS::Message.decode(data), "192.0.2"), 0, sender[3], sender[1])
      connection = tcp.accept
      query = Resolv::DNS::Message.decode(connection.read(connection.read(2).unpack1("n")))
      bytes = reply.call(query, "198.51.100")
      connection.write([bytes.bytesize].pack("n"), bytes)
      connection.close
    end
    r = resolver(["127.0.0.1:#{port}"], cache: false)
    assert_equal Array.new(40) { |i| "198.51.100.#{i + 1}" }, r.addresses("big.test", families: [:A])
    server_thread.join
  ensure
    udp&.close
    tcp&.close
  end

  # Before the true replies: each query's reply to the other type's question (same id), and
  # each reply with another id. Both are dropped; the wait goes on.
  def test_mismatching_answers_are_ignored
    fake = UDPSocket.new
    fake.bind("127.0.0.1", 0)
    addresses = { IN::A => "192.0.2.1", IN::AAAA => "2001:db8::1" }
    server_thread = Thread.new do
      queries = Array.new(2) { fake.recvfrom(512) }.map { |data, sender| [Resolv::DNS::Message.decode(data), sender] }
      reply = lambda do |query, id: query.id, type: query.question.first[1]|
        m = Resolv::DNS::Message.new(id)
        m.qr = 1
        name = query.question.first[0]
        m.add_question(name, type)
        m.add_answer(name, 60, type.new(addresses.fetch(type)))
        m.encode
      end
      other = { IN::A => IN::AAAA, IN::AAAA => IN::A }
      queries.each do |query, sender|
        to = [sender[3], sender[1]]
        fake.send(reply.call(query, type: other.fetch(query.question.first[1])), 0, *to)
        fake.send(reply.call(query, id: (query.id + 1) % 65_536), 0, *to)
      end
      queries.each { |query, sender| fake.send(reply.call(query), 0, sender[3], sender[1]) }
    end
    r = resolver(["127.0.0.1:#{fake.local_address.ip_port}"], cache: false)
    assert_equal ["2001:db8::1", "192.0.2.1"], r.addresses("x.test", families: %i[AAAA A])
    server_thread.join
  ensure
    fake&.close
  end

  def test_cname_chains_and_errors_per_family
    r = resolver
    assert_equal ["192.0.2.2", "2001:db8::2"], r.addresses("cc.test", families: %i[A AAAA])
    assert_equal ["192.0.2.4"], r.addresses("only4.test", families: %i[AAAA A])
    failing = dns_server { |t| t.question.type == :A ? t.respond("192.0.2.9") : t.rcode = :SERVFAIL }
    assert_equal ["192.0.2.9"], resolver([failing.address]).addresses("x.test", families: %i[AAAA A])
    error = assert_raises(UringMachine::DNS::ServerFailure) { resolver([failing.address]).addresses("x.test", families: [:AAAA]) }
    assert_match(/SERVFAIL/, error.message)
  end

  # A timeout around the lookup interrupts its wait: the queries are cancelled, the socket
  # closed (not kept for the next lookup, though the server is on loopback), and the machine
  # goes on.
  def test_an_interrupted_exchange_cleans_up
    server = silent_server
    r = resolver([server], timeout: 30)
    m = UringMachine.machine
    assert_raises(UringMachine::TimeoutError) { m.timeout(0.05) { r.addresses("x.test", families: %i[A AAAA]) } }
    assert_empty sockets_to(Integer(server.split(":").last))
    assert_equal ["192.0.2.2"], resolver.addresses("h.test", families: [:A])
  end

  def test_bad_input
    r = resolver
    assert_raises(ArgumentError) { r.addresses("#{'a' * 64}.test") }
    assert_raises(ArgumentError) { r.addresses("#{'abcdefgh.' * 30}test") }
    assert_raises(ArgumentError) { r.addresses("a..b") }
    assert_raises(ArgumentError) { r.addresses("h.test", families: [:MX]) }
    assert_raises(TypeError) { r.addresses("h.test", families: :A) }
    assert_raises(TypeError) { r.addresses(nil) }
    m = UringMachine.machine
    assert_raises(ArgumentError) { m.__dns_exchange__("dns.example", 53, "h.test", [1], 1, true) }
    assert_raises(ArgumentError) { m.__dns_exchange__("127.0.0.1", 0, "h.test", [1], 1, true) }
    assert_raises(ArgumentError) { m.__dns_exchange__("127.0.0.1", 53, "a" * 300, [1], 1, true) }
    assert_raises(ArgumentError) { m.__dns_exchange__("127.0.0.1", 53, "a..b", [1], 1, true) }
    assert_raises(ArgumentError) { m.__dns_exchange__("127.0.0.1", 53, "h.test", [70_000], 1, true) }
    assert_raises(ArgumentError) { m.__dns_exchange__("127.0.0.1", 53, "h.test", [], 1, true) }
    assert_raises(TypeError) { m.__dns_exchange__("127.0.0.1", 53, "h.test", ["A"], 1, true) }
    assert_raises(TypeError) { m.__dns_exchange__("127.0.0.1", 53, :name, [1], 1, true) }
    assert_raises(ArgumentError) { m.__dns_exchange__("127.0.0.1", 53, "h.test", [1], 0, true) }
    assert_equal ["192.0.2.2"], r.addresses("h.test", families: [:A]), "still usable"
  end

  private

  # A UDP socket and a TCP listener on the same free port of 127.0.0.1.
  def udp_and_tcp_on_one_port
    10.times do
      udp = UDPSocket.new
      udp.bind("127.0.0.1", 0)
      begin
        return [udp, TCPServer.new("127.0.0.1", udp.local_address.ip_port)]
      rescue Errno::EADDRINUSE
        udp.close # that port is taken for TCP: another one
      end
    end
    flunk "no port free for both UDP and TCP"
  end
end
