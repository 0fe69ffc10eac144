# frozen_string_literal: true

require_relative "dns_helper"
require "open3"
require "rbconfig"

# UringMachine::DNS::Resolver against a real dnsmasq (and our own DNS::Server where a test
# needs an answer dnsmasq will not give: a delay, an SOA, forged replies).
class TestDnsClient < DnsTest
  IN = Resolv::DNS::Resource::IN

  def test_a_and_aaaa
    r = resolver
    assert_equal ["192.0.2.2"], addresses_of(r.lookup("h.test"))
    assert_equal ["2001:db8::2"], addresses_of(r.lookup("h.test", :AAAA))
    record = r.lookup("h.test", "a").first
    assert_instance_of IN::A, record
    assert_equal 60, record.ttl
  end

  def test_cname_chain
    r = resolver
    assert_equal ["192.0.2.2"], addresses_of(r.lookup("cc.test"))
    assert_equal ["c.test"], r.lookup("cc.test", :CNAME).map { |c| c.name.to_s }
  end

  def test_mx_txt_srv_ptr
    r = resolver
    mx = r.lookup("m.test", :MX).first
    assert_equal [10, "mail.m.test"], [mx.preference, mx.exchange.to_s]
    assert_equal ["hello world"], r.lookup("t.test", :TXT).map(&:data)
    srv = r.lookup("_x._tcp.s.test", :SRV).first
    assert_equal [1, 2, 8080, "target.s.test"], [srv.priority, srv.weight, srv.port, srv.target.to_s]
    assert_equal ["h.test"], r.lookup("192.0.2.2", :PTR).map { |p| p.name.to_s }
  end

  def test_nxdomain_raises_a_resolv_error_and_nodata_is_empty
    r = resolver
    error = assert_raises(UringMachine::DNS::NXDomain) { r.lookup("nope.test") }
    assert_kind_of Resolv::ResolvError, error
    assert_equal ["nope.test"], error.names
    assert_equal [], r.lookup("only4.test", :AAAA)
  end

  def test_truncated_answer_is_fetched_over_tcp
    records = resolver.lookup("big.test", :TXT)
    assert_equal TestDnsmasq::BIG_TXT, records.size
    assert_includes records.map(&:data), "record 39 with some padding text to make it long"
  end

  def test_a_silent_first_nameserver_fails_over_to_the_next
    r = resolver([silent_server, dnsmasq.address], timeout: 0.3)
    took = elapsed { assert_equal ["192.0.2.2"], addresses_of(r.lookup("h.test")) }
    assert_operator took, :>=, 0.3, "the silent server was given its timeout"
    assert_operator took, :<, 2
  end

  def test_a_refusing_first_nameserver_fails_over_at_once
    r = resolver([closed_port, dnsmasq.address], timeout: 5)
    took = elapsed { assert_equal ["192.0.2.2"], addresses_of(r.lookup("h.test")) }
    assert_operator took, :<, 2, "ECONNREFUSED moves on without waiting for the timeout"
  end

  def test_timeout_names_the_servers_tried
    silent = [silent_server, silent_server]
    r = resolver(silent, timeout: 0.1, attempts: 2)
    error = assert_raises(UringMachine::DNS::TimeoutError) { r.lookup("h.test") }
    assert_kind_of Timeout::Error, error
    assert_equal silent, error.servers
    silent.each { |s| assert_includes error.message, s }
  end

  def test_servfail_from_every_server
    failing = dns_server { |t| t.rcode = :SERVFAIL }
    error = assert_raises(UringMachine::DNS::ServerFailure) { resolver([failing.address]).lookup("x.test") }
    assert_match(/SERVFAIL/, error.message)
  end

  def test_rotate_spreads_queries_over_the_servers
    counts = Hash.new(0)
    servers = Array.new(2) { |i| dns_server { |t| counts[i] += 1; t.respond("192.0.2.#{i + 1}") } }
    r = resolver(servers.map(&:address), rotate: true, cache: false)
    4.times { r.lookup("x.test") }
    assert_equal({ 0 => 2, 1 => 2 }, counts)
    plain = resolver(servers.map(&:address), cache: false)
    2.times { plain.lookup("x.test") }
    assert_equal({ 0 => 4, 1 => 2 }, counts, "without rotate, the first server gets every query")
  end

  def test_search_list_and_ndots
    r = resolver(search: %w[nothing.example test], ndots: 1)
    assert_equal ["192.0.2.2"], addresses_of(r.lookup("h"))
    error = assert_raises(UringMachine::DNS::NXDomain) { r.lookup("h.") }
    assert_equal ["h"], error.names, "a trailing dot: the name as it is, no search"
    error = assert_raises(UringMachine::DNS::NXDomain) { r.lookup("zz") }
    assert_equal %w[zz.nothing.example zz.test zz], error.names
    dotted = resolver(search: %w[test], ndots: 2)
    assert_equal ["192.0.2.2"], addresses_of(dotted.lookup("h"))
  end

  def test_cache_honours_ttls_and_negative_answers
    queries = Hash.new(0)
    soa = ->(minimum) { IN::SOA.new(Resolv::DNS::Name.create("test."), Resolv::DNS::Name.create("admin.test."), 1, 60, 60, 60, minimum) }
    server = dns_server do |t|
      queries[t.question.name] += 1
      case t.question.name
      when "short.test" then t.respond("192.0.2.1", ttl: 1)
      when "long.test" then t.respond("192.0.2.2", ttl: 600)
      when "gone.test" then t.add_authority("test", 600, soa.call(1)).rcode = :NXDOMAIN # negative TTL min(600, 1)
      when "gone-forever.test" then t.add_authority("test", 600, soa.call(300)).rcode = :NXDOMAIN
      end
    end
    r = resolver([server.address])
    3.times { r.lookup("long.test") }
    3.times { r.lookup("short.test") }
    2.times { assert_raises(UringMachine::DNS::NXDomain) { r.lookup("gone.test") } }
    2.times { assert_raises(UringMachine::DNS::NXDomain) { r.lookup("gone-forever.test") } }
    assert_equal({ "long.test" => 1, "short.test" => 1, "gone.test" => 1, "gone-forever.test" => 1 }, queries)
    sleep 1.1 # past the 1-second TTLs
    r.lookup("long.test")
    r.lookup("short.test")
    assert_raises(UringMachine::DNS::NXDomain) { r.lookup("gone.test") }
    assert_raises(UringMachine::DNS::NXDomain) { r.lookup("gone-forever.test") }
    assert_equal({ "long.test" => 1, "short.test" => 2, "gone.test" => 2, "gone-forever.test" => 1 }, queries)
  end

  # A fake server that answers each query with garbage, a reply with another id, a reply to
  # another question, and (from another port) a forged reply, before the true one.
  def test_stray_and_forged_packets_are_ignored
    fake = UDPSocket.new
    fake.bind("127.0.0.1", 0)
    forger = UDPSocket.new
    forger.bind("127.0.0.1", 0)
    server_thread = Thread.new do
      data, sender = fake.recvfrom(512)
      query = Resolv::DNS::Message.decode(data)
      reply = lambda do |id: query.id, name: query.question.first[0], address: "192.0.2.1"|
        m = Resolv::DNS::Message.new(id)
        m.qr = 1
        m.add_question(name, query.question.first[1])
        m.add_answer(name, 60, IN::A.new(address))
        m.encode
      end
      to = [sender[3], sender[1]]
      forger.send(reply.call(address: "6.6.6.6"), 0, *to)
      fake.send("\x00garbage", 0, *to)
      fake.send(reply.call(id: (query.id + 1) % 65_536, address: "6.6.6.7"), 0, *to)
      fake.send(reply.call(name: Resolv::DNS::Name.create("other.test."), address: "6.6.6.8"), 0, *to)
      fake.send(reply.call, 0, *to)
    end
    r = resolver(["127.0.0.1:#{fake.local_address.ip_port}"])
    assert_equal ["192.0.2.1"], addresses_of(r.lookup("x.test"))
    server_thread.join
  ensure
    fake&.close
    forger&.close
  end

  # A server on another address than loopback: each lookup has a socket of its own, so a
  # fresh random source port as well as a random id (RFC 5452).
  def test_query_ids_and_source_ports_vary
    address = Socket.ip_address_list.find { |a| a.ipv4? && !a.ipv4_loopback? }&.ip_address
    skip "this host has no IPv4 address but loopback to run a server on" unless address

    seen = []
    server = dns_server(host: address) { |t| seen << [t.query.id, t.remote_address.ip_port]; t.respond("192.0.2.1") }
    r = resolver(["#{address}:#{server.port}"], cache: false)
    20.times { r.lookup("x.test") }
    assert_operator seen.map(&:first).uniq.size, :>=, 18
    assert_operator seen.map(&:last).uniq.size, :>=, 10
  end

  # To a loopback server no other host can send a forged reply: one socket serves lookup after
  # lookup (ids still random). A forked child never gets the parent's, and the machine closes
  # them when its thread ends.
  def test_a_loopback_server_gets_one_socket_lookup_after_lookup
    seen = []
    server = dns_server { |t| seen << [t.query.id, t.remote_address.ip_port]; t.respond("192.0.2.1") }
    r = resolver([server.address], cache: false)
    20.times { r.addresses("x.test", families: [:A]) }
    assert_operator seen.map(&:first).uniq.size, :>=, 18
    assert_equal 1, seen.map(&:last).uniq.size, "one source port"

    pid = fork { exit!(sockets_to(server.port).empty? ? 0 : 1) }
    assert Process.wait2(pid).last.success?, "the forked child has no socket to the server"

    fds = Dir.children("/proc/self/fd").size
    Thread.new { 3.times { r.addresses("x.test", families: [:A]) } }.join
    assert_equal fds, Dir.children("/proc/self/fd").size, "a thread's sockets close when it ends"
  end

  def test_hosts_file_comes_first
    Dir.mktmpdir do |dir|
      path = File.join(dir, "hosts")
      File.write(path, "192.0.2.99 h.test alias.test\n2001:db8::99 h.test\n")
      r = resolver(hosts: path)
      assert_equal ["192.0.2.99"], addresses_of(r.lookup("H.test"))
      assert_equal ["2001:db8::99"], addresses_of(r.lookup("h.test", :AAAA))
      assert_equal %w[h.test alias.test], r.lookup("192.0.2.99", :PTR).map { |p| p.name.to_s }
      assert_equal ["h.test"], r.lookup("c.test", :CNAME).map { |c| c.name.to_s }, "other types still ask the server"
    end
  end

  def test_localhost_without_a_hosts_entry
    r = resolver
    assert_equal ["127.0.0.1"], addresses_of(r.lookup("localhost"))
    assert_equal ["::1"], addresses_of(r.lookup("x.localhost", :AAAA))
  end

  def test_bad_input
    r = resolver
    assert_raises(ArgumentError) { r.lookup("h.test", :BOGUS) }
    assert_raises(TypeError) { r.lookup("h.test", 42) }
    assert_raises(TypeError) { r.lookup(nil) }
    assert_raises(ArgumentError) { r.lookup("") }
    assert_raises(ArgumentError) { r.lookup("a..b") }
    %w[h.test.. .h.test].each { |name| assert_raises(ArgumentError, name) { r.addresses(name) } }
    assert_raises(ArgumentError) { r.lookup("#{'a' * 64}.test") }
    assert_raises(ArgumentError) { r.lookup("#{'abcdefgh.' * 30}test") }
    assert_raises(ArgumentError) { resolver(["not an address"]) }
    assert_raises(ArgumentError) { resolver(["127.0.0.1:99999"]) }
    assert_raises(ArgumentError) { resolver(timeout: 0) }
    assert_raises(ArgumentError) { resolver(attempts: 0) }
    assert_equal ["192.0.2.2"], addresses_of(r.lookup("h.test")), "still usable"
  end

  def test_addresses_asks_for_both_families_at_once
    r = resolver
    assert_equal ["2001:db8::2", "192.0.2.2"], r.addresses("h.test", families: %i[AAAA A])
    assert_equal ["192.0.2.2", "2001:db8::2"], r.addresses("h.test", families: %i[A AAAA])
    assert_equal ["192.0.2.4"], r.addresses("only4.test", families: %i[AAAA A])
    assert_equal ["192.0.2.9"], r.addresses("192.0.2.9")
    assert_raises(UringMachine::DNS::NXDomain) { r.addresses("nope.test", families: %i[AAAA A]) }
  end

  # Each family goes on down the search list until a name has its records; a name that
  # exists without any stops nothing but makes "no such name" an empty answer.
  def test_addresses_follows_the_search_list_per_family
    server = dns_server do |t|
      case [t.question.name, t.question.type]
      when ["w.first.test", :A] then t.respond("192.0.2.1")
      when ["w.second.test", :AAAA] then t.respond("2001:db8::2")
      when ["v.first.test", :A], ["v.first.test", :AAAA] then t.rcode = :NOERROR
      end
    end
    r = resolver([server.address], search: %w[first.test second.test], ndots: 1)
    assert_equal ["192.0.2.1", "2001:db8::2"], r.addresses("w", families: %i[A AAAA])
    assert_equal ["2001:db8::2", "192.0.2.1"], r.addresses("w", families: %i[AAAA A])
    assert_equal [], r.addresses("v", families: %i[A AAAA]), "v.first.test exists without addresses"
    error = assert_raises(UringMachine::DNS::NXDomain) { r.addresses("u", families: %i[A AAAA]) }
    assert_equal %w[u.first.test u.second.test u], error.names
  end

  # 100 lookups against a server that takes 0.2 s per answer: they wait together.
  def test_concurrent_lookups_overlap_with_the_machine_api
    slow = dns_server { |t| UringMachine.machine.sleep(0.2); t.respond("192.0.2.1") }
    r = resolver([slow.address], cache: false)
    m = UringMachine.machine
    results = nil
    took = elapsed do
      fibers = Array.new(100) { |i| m.spin { addresses_of(r.lookup("n#{i}.test")) } }
      results = m.join(*fibers)
    end
    assert_equal [["192.0.2.1"]] * 100, results
    assert_operator took, :<, 1.5, "100 lookups of 0.2 s each took #{took.round(2)} s: they did not overlap"
  end

  def test_concurrent_lookups_overlap_under_the_scheduler
    slow = dns_server { |t| UringMachine.machine.sleep(0.2); t.respond("192.0.2.1") }
    r = resolver([slow.address], cache: false)
    results, ticks, took = with_scheduler do
      start = monotonic
      values, ticks = run_with_ticker { in_fibers(100) { |i| addresses_of(r.lookup("n#{i}.test")) } }
      [values, ticks, monotonic - start]
    end
    assert_equal [["192.0.2.1"]] * 100, results
    assert_operator took, :<, 1.5, "100 lookups of 0.2 s each took #{took.round(2)} s: they did not overlap"
    assert_operator ticks, :>=, 5, "other fibers ran while the lookups waited"
  end

  def test_default_resolver_reads_the_system_files
    assert_kind_of UringMachine::DNS::Resolver, UringMachine::DNS.default_resolver
    assert_equal ["127.0.0.1"], UringMachine::DNS.addresses("localhost").grep(/\A127\./).first(1)
    assert_raises(TypeError) { UringMachine::DNS.default_resolver = "8.8.8.8" }
  end

  # In a fresh process (nothing asked for the default resolver yet), the one set is the one used.
  def test_a_default_resolver_set_first_is_kept
    code = <<~RUBY
      require "uring_machine"
      mine = UringMachine::DNS::Resolver.new(nameservers: ["127.0.0.1:53"], resolv_conf: false)
      UringMachine::DNS.default_resolver = mine
      print UringMachine::DNS.default_resolver.equal?(mine)
    RUBY
    out, err, status = Open3.capture3(RbConfig.ruby, "-w", "-I", File.expand_path("../lib", __dir__), "-e", code)
    assert status.success?, err
    assert_equal ["true", ""], [out, err]
  end
end
