# frozen_string_literal: true

require_relative "dns_helper"
require "open3"

# UringMachine::DNS::Server, asked by dig (Debian package bind9-dnsutils) and by our resolver.
class TestDnsServer < DnsTest
  IN = Resolv::DNS::Resource::IN

  def dig(port, *args)
    binary = LocalServer.executable("/usr/bin/dig", "/usr/local/bin/dig")
    skip_with_reason("no dig (Debian package bind9-dnsutils; bin/setup installs it)") unless binary
    out, status = Open3.capture2e(binary, "@127.0.0.1", "-p", port.to_s, "+time=3", "+tries=1", *args)
    assert status.success?, "dig failed: #{out}"
    out
  end

  def zone_server(**listen)
    dns_server(**listen) do |t|
      q = t.question
      case [q.name.downcase, q.type]
      when ["www.example", :A] then t.respond("192.0.2.80", ttl: 120)
      when ["www.example", :AAAA] then t.respond("2001:db8::80")
      when ["www.example", :MX] then t.respond(IN::MX.new(5, Resolv::DNS::Name.create("mx.example.")))
      when ["big.example", :TXT] then t.respond(Array.new(40) { |i| IN::TXT.new("text record number #{i} padded") })
      when ["boom.example", :A] then raise "handler failure"
      when ["empty.example", :A] then t.respond
      end
    end
  end

  def test_dig_over_udp_and_tcp
    server = zone_server
    %w[+notcp +tcp].each do |transport|
      out = dig(server.port, transport, "www.example", "A")
      assert_match(/status: NOERROR/, out)
      assert_match(/^www\.example\.\s+120\s+IN\s+A\s+192\.0\.2\.80$/, out)
      assert_match(/flags: qr aa rd/, out)
    end
    assert_equal "2001:db8::80", dig(server.port, "+short", "+tcp", "www.example", "AAAA").strip
    assert_equal "5 mx.example.", dig(server.port, "+short", "www.example", "MX").strip
    assert_equal({ udp: 2, tcp: 2 }, server.server.stats.slice(:udp, :tcp))
  end

  def test_default_is_nxdomain_and_a_failing_block_is_servfail
    server = zone_server
    assert_match(/status: NXDOMAIN/, dig(server.port, "nothing.example"))
    assert_match(/status: NOERROR.*ANSWER: 0/m, dig(server.port, "empty.example"))
    assert_match(/status: SERVFAIL/, dig(server.port, "boom.example"))
    assert_equal 1, server.server.stats[:errors]
    assert_equal "handler failure", server.server.last_error.message
    assert_match(/status: NOERROR/, dig(server.port, "www.example"), "still serving")
  end

  def test_a_large_udp_answer_is_truncated_and_complete_over_tcp
    server = zone_server
    out = dig(server.port, "+ignore", "+noedns", "big.example", "TXT")
    assert_match(/flags: qr aa tc rd/, out)
    assert_equal 40, dig(server.port, "+short", "+tcp", "big.example", "TXT").lines.size
    records = resolver([server.address]).lookup("big.example", :TXT)
    assert_equal 40, records.size, "our resolver retried over TCP"
    assert_operator server.server.stats[:truncated], :>=, 2
  end

  def test_malformed_packets_are_dropped_and_counted
    server = zone_server
    socket = UDPSocket.new
    socket.connect("127.0.0.1", server.port)
    ["", "x", "\xff" * 11, "\x00" * 12, Random.new(1).bytes(300)].each { |junk| socket.send(junk.b, 0) }
    valid = Resolv::DNS::Message.new(9).tap { |m| m.add_question(Resolv::DNS::Name.create("www.example."), IN::A) }.encode
    cut = (12...valid.bytesize).map { |n| valid.byteslice(0, n) } # every truncation of a real query
    cut.each { |junk| socket.send(junk, 0) }
    reply = Resolv::DNS::Message.new(7).tap { |m| m.qr = 1 }.encode
    socket.send(reply, 0) # a response, not a query
    tcp = TCPSocket.new("127.0.0.1", server.port)
    tcp.write([5, "abcde"].pack("na*"))
    assert_nil tcp.wait_readable(5) && tcp.read(1), "the server closed the connection without an answer"
    tcp.close
    assert_equal ["192.0.2.80"], resolver([server.address]).addresses("www.example", families: [:A])
    assert_equal 7 + cut.size, server.server.stats[:malformed]
    assert_equal 1, server.server.stats[:queries]
    socket.close
  end

  # Two queries on one connection: the slow one does not hold up the fast one, and a client
  # that half-closes after writing still gets both answers.
  def test_pipelined_tcp_queries_are_answered_concurrently
    server = dns_server do |t|
      UringMachine.machine.sleep(0.3) if t.question.name == "slow.example"
      t.respond("192.0.2.1")
    end
    tcp = TCPSocket.new("127.0.0.1", server.port)
    %w[slow.example fast.example].each_with_index do |name, id|
      query = Resolv::DNS::Message.new(id).tap { |m| m.add_question(Resolv::DNS::Name.create("#{name}."), IN::A) }.encode
      tcp.write([query.bytesize].pack("n") + query)
    end
    tcp.close_write
    order = 2.times.map do
      length = tcp.read(2).unpack1("n")
      Resolv::DNS::Message.decode(tcp.read(length)).id
    end
    assert_equal [1, 0], order, "the fast answer came first"
    assert_nil tcp.read(1), "then the server closed the connection"
  ensure
    tcp&.close
  end

  def test_transaction_details
    seen = Thread::Queue.new
    server = dns_server do |t|
      seen << [t.protocol, t.remote_address.ip_address, t.questions.map(&:to_a)]
      t.respond("192.0.2.1")
    end
    dig(server.port, "+tcp", "Mixed.Example", "A")
    protocol, address, questions = seen.pop
    assert_equal [:tcp, "127.0.0.1"], [protocol, address]
    assert_equal [["Mixed.Example", :A, IN::A]], questions
  end

  def test_stop_closes_both_ports
    server = zone_server
    port = server.port
    server.stop
    assert_raises(Errno::ECONNREFUSED) { TCPSocket.new("127.0.0.1", port).close }
    error = assert_raises(UringMachine::DNS::ServerFailure, UringMachine::DNS::TimeoutError) do
      resolver(["127.0.0.1:#{port}"], timeout: 0.3).lookup("www.example")
    end
    assert_match(/127\.0\.0\.1:#{port}/, error.message)
  end

  def test_under_the_scheduler_with_stop
    answers = nil
    stopped = with_scheduler do
      server = UringMachine::DNS::Server.new { |t| t.respond("192.0.2.7") }.listen(port: 0)
      schedule_fiber do
        r = resolver(["127.0.0.1:#{server.port}"], cache: false)
        answers = in_fibers(10) { |i| r.lookup("n#{i}.example").map { |a| a.address.to_s } }
        server.stop
      end
      Fiber.scheduler.run
      !server.listening?
    end
    assert_equal [["192.0.2.7"]] * 10, answers
    assert stopped
  end

  def test_a_server_outlives_the_scheduled_fiber_that_started_it
    answers = nil
    with_scheduler do
      server = nil
      starter = schedule_fiber { server = UringMachine::DNS::Server.new { |t| t.respond("192.0.2.8") }.listen(port: 0) }
      schedule_fiber do
        # (listen may wait: a TCP port taken makes it close that socket, through the ring, and
        # try another)
        UringMachine.machine.join(starter)
        answers = resolver(["127.0.0.1:#{server.port}"], timeout: 1).lookup("x.example").map { |a| a.address.to_s }
        server.stop
      end
      Fiber.scheduler.run
    end
    assert_equal ["192.0.2.8"], answers
  end

  def test_bad_arguments
    assert_raises(ArgumentError) { UringMachine::DNS::Server.new }
    server = UringMachine::DNS::Server.new { |t| t.respond(42) }
    assert_raises(ArgumentError) { server.listen(udp: false, tcp: false) }
    t = UringMachine::DNS::Transaction.new(
      Resolv::DNS::Message.new(1).tap { |m| m.add_question(Resolv::DNS::Name.create("a.example."), IN::A) }, nil, :udp
    )
    assert_equal :NXDOMAIN, t.rcode
    assert_raises(TypeError) { t.respond(42) }
    assert_raises(ArgumentError) { t.respond("not-an-address") }
    assert_raises(ArgumentError) { t.respond("192.0.2.1", ttl: -1) }
    assert_raises(ArgumentError) { t.rcode = :NOPE }
    t.respond("192.0.2.1")
    assert_equal :NOERROR, t.rcode
  end
end
