# frozen_string_literal: true

require_relative "integration_helper"
require_relative "support/dnsmasq_server"
require "etc"
require "resolv"
require "uring_machine"
UringMachine.const_get(:DNS) # loads it (autoload)

# The zone every DNS test asks dnsmasq about.
class TestDnsmasq < DnsmasqServer
  BIG_TXT = 40 # TXT records of big.test: ~2 KB, more than a 512-byte UDP answer holds

  RECORDS = [
    "--host-record=h.test,192.0.2.2,2001:db8::2",
    "--host-record=loop.test,127.0.0.1",
    "--cname=c.test,h.test", "--cname=cc.test,c.test",
    "--mx-host=m.test,mail.m.test,10",
    "--txt-record=t.test,hello world",
    "--srv-host=_x._tcp.s.test,target.s.test,8080,1,2",
    "--host-record=only4.test,192.0.2.4",
    *Array.new(BIG_TXT) { |i| "--txt-record=big.test,record #{i} with some padding text to make it long" }
  ].freeze

  def self.start
    new(*RECORDS, local: ["#"]).tap(&:start)
  end
end

# Our own DNS::Server on a thread (and Machine) of its own, so that a test's lookups on its
# thread wait on a server that runs independently. Stopped by #stop.
class DnsServerThread
  attr_reader :server, :port, :thread

  def initialize(**listen, &handler)
    ready = Thread::Queue.new
    @stop_r, @stop_w = IO.pipe
    @thread = Thread.new do
      Thread.current.report_on_exception = false
      machine = UringMachine.machine
      @server = UringMachine::DNS::Server.new(&handler)
      @server.listen(host: "127.0.0.1", port: 0, **listen)
      ready << @server.port
      machine.spin do
        machine.read(@stop_r, +"", 1)
        @server.stop
      end
      @server.wait
    rescue Exception => e # rubocop:disable Lint/RescueException -- handed to the test
      ready << e
      raise
    end
    @port = ready.pop
    raise @port if @port.is_a?(Exception)
  end

  def address
    "127.0.0.1:#{@port}"
  end

  def stop
    @stop_w.close unless @stop_w.closed?
    @thread.join(10) || raise("DNS server thread did not stop")
    @stop_r.close
    self
  end
end

module DnsTestHelper
  include IntegrationTestHelper

  def dnsmasq
    server(TestDnsmasq)
  end

  # A resolver asking only +servers+ (default: the test dnsmasq), nothing from /etc.
  def resolver(servers = [dnsmasq.address], **options)
    UringMachine::DNS::Resolver.new(nameservers: servers, search: [], resolv_conf: false, hosts: false,
                                    timeout: 2, attempts: 1, **options)
  end

  # A UDP port on 127.0.0.1 with a socket bound to it that never answers (a dead server).
  def silent_server
    socket = UDPSocket.new
    socket.bind("127.0.0.1", 0)
    @silent_sockets = (@silent_sockets || []) << socket
    "127.0.0.1:#{socket.local_address.ip_port}"
  end

  # A UDP port on 127.0.0.1 nobody listens on (ECONNREFUSED).
  def closed_port
    socket = UDPSocket.new
    socket.bind("127.0.0.1", 0)
    "127.0.0.1:#{socket.local_address.ip_port}"
  ensure
    socket&.close
  end

  # A UDP socket for a test to ask from (closed at teardown).
  def udp_client
    (@udp_clients ||= []) << UDPSocket.new
    @udp_clients.last
  end

  def teardown
    @silent_sockets&.each(&:close)
    @udp_clients&.each(&:close)
    @dns_threads&.each(&:stop)
    super
  end

  def dns_server(**listen, &handler)
    thread = DnsServerThread.new(**listen, &handler)
    (@dns_threads ||= []) << thread
    thread
  end

  # This process's sockets connected to +port+ on loopback.
  def sockets_to(port)
    Dir.children("/proc/self/fd").map(&:to_i).select do |fd|
      socket = Socket.for_fd(fd)
      socket.autoclose = false
      socket.remote_address.ip_port == port
    rescue SystemCallError, ArgumentError, TypeError
      false
    end
  end

  def addresses_of(records)
    records.map { |r| r.address.to_s }
  end
end

class DnsTest < SchedulerTest
  include DnsTestHelper
end
