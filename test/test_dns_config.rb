# frozen_string_literal: true

require_relative "test_helper"
require "tmpdir"
UringMachine.const_get(:DNS) # autoloaded

# /etc/resolv.conf and /etc/hosts parsing (on temporary files), the cache, record types.
class TestDnsConfig < Minitest::Test
  DNS = UringMachine::DNS

  def with_file(text)
    Dir.mktmpdir do |dir|
      path = File.join(dir, "file")
      File.write(path, text)
      yield path
    end
  end

  def test_resolv_conf
    with_file(<<~CONF) do |path|
      # comment
      nameserver 192.0.2.53
      nameserver 2001:db8::53 ; trailing comment
      nameserver not-an-address
      nameserver 192.0.2.54
      nameserver 192.0.2.55
      domain ignored.example
      search one.example two.example.
      options ndots:3 timeout:2 attempts:4 rotate unknown:1
      options timeout:99 attempts:x
      sortlist 130.155.160.0/255.255.240.0
    CONF
      conf = DNS::ResolvConf.load(path)
      assert_equal [["192.0.2.53", 53], ["2001:db8::53", 53], ["192.0.2.54", 53]], conf.nameservers, "at most 3"
      assert_equal %w[one.example two.example], conf.search, "the last of search/domain wins"
      assert_equal [3, 30, 4, true], [conf.ndots, conf.timeout, conf.attempts, conf.rotate], "timeout capped at 30"
    end
  end

  def test_resolv_conf_defaults
    conf = DNS::ResolvConf.load("/nonexistent/resolv.conf")
    assert_equal [["127.0.0.1", 53]], conf.nameservers
    assert_equal [1, 5, 2, false], [conf.ndots, conf.timeout, conf.attempts, conf.rotate]
    assert_equal %w[only.example], DNS::ResolvConf.parse("search a.example\ndomain only.example\n").search
  end

  def test_nameserver_specs
    assert_equal ["192.0.2.1", 53], DNS::ResolvConf.nameserver("192.0.2.1")
    assert_equal ["192.0.2.1", 5300], DNS::ResolvConf.nameserver("192.0.2.1:5300")
    assert_equal ["::1", 5300], DNS::ResolvConf.nameserver("[::1]:5300")
    assert_equal ["2001:db8::1", 53], DNS::ResolvConf.nameserver("2001:db8::1")
    assert_equal ["192.0.2.1", 99], DNS::ResolvConf.nameserver(["192.0.2.1", 99])
    assert_raises(ArgumentError) { DNS::ResolvConf.nameserver("dns.example") }
    assert_raises(ArgumentError) { DNS::ResolvConf.nameserver("192.0.2.1:0") }
    assert_raises(TypeError) { DNS::ResolvConf.nameserver(53) }
  end

  def test_resolver_takes_the_file_and_overrides
    with_file("nameserver 192.0.2.53\nsearch a.example\noptions ndots:2\n") do |path|
      config = DNS::Resolver.new(resolv_conf: path, timeout: 0.5, hosts: false).configuration
      assert_equal [["192.0.2.53", 53]], config[:nameservers]
      assert_equal [%w[a.example], 2, 0.5, 2], config.values_at(:search, :ndots, :timeout, :attempts)
    end
  end

  def test_hosts
    with_file(<<~HOSTS) do |path|
      127.0.0.1 localhost
      ::1       localhost ip6-localhost # comment
      192.0.2.1 Web.Example web
      192.0.2.2 web.example.
      bogus     nothing.example
      # 192.0.2.3 commented.example
    HOSTS
      hosts = DNS::Hosts.new(path)
      assert_equal %w[192.0.2.1 192.0.2.2], hosts.addresses("web.EXAMPLE")
      assert_equal %w[127.0.0.1 ::1], hosts.addresses("localhost")
      assert_equal ["::1"], hosts.lookup("localhost", Resolv::DNS::Resource::IN::AAAA).map { |r| r.address.to_s }
      assert_nil hosts.lookup("web", Resolv::DNS::Resource::IN::AAAA)
      assert_nil hosts.addresses("nothing.example")
      assert_nil hosts.addresses("commented.example")
      ptr = hosts.lookup("1.2.0.192.in-addr.arpa", Resolv::DNS::Resource::IN::PTR)
      assert_equal %w[Web.Example web], ptr.map { |r| r.name.to_s }
    end
  end

  def test_hosts_file_is_reread_when_it_changes
    with_file("192.0.2.1 a.example\n") do |path|
      hosts = DNS::Hosts.new(path)
      assert_equal ["192.0.2.1"], hosts.addresses("a.example")
      File.write(path, "192.0.2.9 a.example b.example\n")
      File.utime(Time.now + 5, Time.now + 5, path)
      hosts.instance_variable_set(:@checked_at, nil) # skip the once-a-second throttle
      assert_equal ["192.0.2.9"], hosts.addresses("b.example")
    end
  end

  def test_cache_expiry_and_bounds
    cache = DNS::Cache.new(max_entries: 2)
    cache.set(:a, 1, 60)
    cache.set(:b, 2, 0.05)
    cache.set(:zero, 3, 0)
    assert_equal [1, 2, nil], [cache.get(:a), cache.get(:b), cache.get(:zero)]
    sleep 0.06
    assert_nil cache.get(:b), "expired"
    cache.set(:c, 3, 60)
    cache.set(:d, 4, 60)
    assert_equal 2, cache.size
    assert_nil cache.get(:a), "the oldest entry made room"
    assert_equal [3, 4], [cache.get(:c), cache.get(:d)]
    assert_raises(ArgumentError) { DNS::Cache.new(max_entries: 0) }
  end

  def test_types_and_names
    assert_equal Resolv::DNS::Resource::IN::MX, DNS::Types.resource_class(:mx)
    assert_equal Resolv::DNS::Resource::IN::SRV, DNS::Types.resource_class("SRV")
    assert_equal Resolv::DNS::Resource::IN::A, DNS::Types.resource_class(Resolv::DNS::Resource::IN::A)
    assert_raises(ArgumentError) { DNS::Types.resource_class(:NOPE) }
    assert_raises(ArgumentError) { DNS::Types.resource_class(String) }
    assert_equal "example.com", DNS::Types.check_name("example.com.")
    assert_equal "4.3.2.1.in-addr.arpa", DNS.reverse_name("1.2.3.4")
    assert_equal "1.2.3.4", DNS.address_of_reverse_name("4.3.2.1.in-addr.arpa.")
    assert_equal "2001:db8::1", DNS.address_of_reverse_name(DNS.reverse_name("2001:db8::1"))
  end
end
