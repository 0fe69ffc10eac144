# frozen_string_literal: true

require_relative "dns_helper"

# Scheduler#address_resolve through UringMachine::DNS: getaddrinfo's answers for numeric
# addresses and localhost, names through the ring (no worker thread), the getaddrinfo switch.
class TestDnsAddressResolve < DnsTest
  def test_numeric_addresses_and_brackets
    got = with_scheduler do |s|
      %w[127.0.0.1 ::1 [::1] 127.1 [2001:db8::1]].map { |host| s.address_resolve(host) }
    end
    assert_equal [["127.0.0.1"], ["::1"], ["::1"], ["127.0.0.1"], ["2001:db8::1"]], got
  end

  def test_localhost_as_getaddrinfo_says
    expected = Addrinfo.getaddrinfo("localhost", nil, nil, :STREAM).map(&:ip_address).uniq
    got = with_scheduler { |s| s.address_resolve("localhost") }
    assert_includes got, "127.0.0.1"
    assert_equal expected.sort, got.sort
  end

  def test_names_go_through_the_ring_without_threads
    r = resolver
    got = with_scheduler do |s|
      s.dns = r
      server = TCPServer.new("127.0.0.1", 0)
      port = server.local_address.ip_port
      result = {}
      schedule_fiber do
        result[:addresses] = s.address_resolve("loop.test")
        result[:getaddrinfo] = Addrinfo.getaddrinfo("loop.test", port, nil, :STREAM).map(&:ip_address)
        result[:missing] = s.address_resolve("nope.test")
        result[:socket_error] = begin
          Addrinfo.getaddrinfo("nope.test", port, nil, :STREAM)
        rescue SocketError => e
          e # Socket::ResolutionError, a SocketError, from Ruby 3.3 on
        end
      end
      s.run
      server.close
      result.merge(workers: s.instance_variable_get(:@workers))
    end
    assert_equal ["127.0.0.1"], got[:addresses]
    assert_equal ["127.0.0.1"], got[:getaddrinfo]
    assert_equal [], got[:missing]
    assert_kind_of SocketError, got[:socket_error]
    assert_nil got[:workers], "no worker thread was started"
  end

  # The hook is given only the name; the family Addrinfo.getaddrinfo or Socket.getaddrinfo
  # asked for decides the records asked for, as getaddrinfo's own lookups do.
  def test_a_family_asks_for_its_records_only
    seen = []
    server = dns_server do |t|
      seen << t.question.type
      t.question.type == :A ? t.respond("192.0.2.5") : t.respond("2001:db8::5")
    end
    r = resolver([server.address], cache: false)
    got = with_scheduler do |s|
      s.dns = r
      result = {}
      schedule_fiber do
        asked = lambda do |&lookup|
          seen.clear
          [lookup.call, seen.sort]
        end
        result[:inet] = asked.call { Addrinfo.getaddrinfo("f.test", 80, :INET, :STREAM).map(&:ip_address) }
        result[:inet6] = asked.call { Addrinfo.getaddrinfo("f.test", 80, Socket::AF_INET6, :STREAM).map(&:ip_address) }
        result[:socket] = asked.call { Socket.getaddrinfo("f.test", 80, "AF_INET", :STREAM).map { |a| a[3] } }
        result[:any] = asked.call { Addrinfo.getaddrinfo("f.test", 80, nil, :STREAM).map(&:ip_address).sort }
        result[:after] = UringMachine::LookupFamily.wanted
      end
      s.run
      result
    end
    assert_equal [["192.0.2.5"], [:A]], got[:inet]
    assert_equal [["2001:db8::5"], [:AAAA]], got[:inet6]
    assert_equal [["192.0.2.5"], [:A]], got[:socket]
    families = UringMachine::DNS.address_families
    assert_equal families.sort, got[:any][1], "no family: address_families"
    assert_equal families.map { |f| f == :A ? "192.0.2.5" : "2001:db8::5" }.sort, got[:any][0]
    assert_nil got[:after], "the family is forgotten once the lookup returns"
  end

  def test_getaddrinfo_switch
    got = with_scheduler do |s|
      s.dns = :getaddrinfo
      [s.dns, s.address_resolve("localhost"), !s.instance_variable_get(:@workers).nil?]
    end
    assert_equal :getaddrinfo, got[0]
    assert_includes got[1], "127.0.0.1"
    assert got[2], "getaddrinfo ran on a worker thread"
    assert_raises(ArgumentError) { UringMachine::Scheduler.new.dns = :bogus }
  end

  def test_um_dns_environment_variable
    lib = File.expand_path("../lib", __dir__)
    script = 'Fiber.set_scheduler(s = UringMachine::Scheduler.new); print s.dns.inspect'
    out = IO.popen({ "UM_DNS" => "getaddrinfo" }, [RbConfig.ruby, "-I", lib, "-ruring_machine", "-e", script], &:read)
    assert_equal ":getaddrinfo", out
    out = IO.popen({ "UM_DNS" => nil }, [RbConfig.ruby, "-I", lib, "-ruring_machine", "-e", script], &:read)
    assert_equal ":ring", out
    out = IO.popen({ "UM_DNS" => "nsswitch" }, [RbConfig.ruby, "-I", lib, "-ruring_machine", "-e", script],
                   err: %i[child out], &:read)
    assert_match(/UM_DNS must be "ring" or "getaddrinfo"/, out)
  end
end
