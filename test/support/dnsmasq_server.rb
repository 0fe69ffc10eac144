# frozen_string_literal: true

require_relative "local_server"
require "etc"
require "resolv"

# A throwaway dnsmasq on 127.0.0.1 and a free port, answering only from its command line (no
# /etc/resolv.conf, no /etc/hosts, no upstream): every name under the +local+ domains that it
# was not told about is NXDOMAIN ("#": every domain). Binary: dnsmasq (Debian package dnsmasq-base).
class DnsmasqServer < LocalServer::Server
  # +records+: dnsmasq options such as "--host-record=h.test,192.0.2.1".
  def initialize(*records, local: %w[test], ttl: 60)
    @records = records
    @local = local
    @ttl = ttl
    @binary = LocalServer.executable("/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/usr/local/sbin/dnsmasq")
    return if @binary

    raise LocalServer::Unavailable, "no dnsmasq (Debian package dnsmasq-base; bin/setup installs it)"
  end

  def address
    "127.0.0.1:#{@port}"
  end

  private

  def description
    "dnsmasq"
  end

  def prepare
    Dir.mkdir(File.join(@dir, "conf.d"))
  end

  def command
    [@binary, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--port=#{@port}",
     "--listen-address=127.0.0.1", "--bind-interfaces", "--conf-file=/dev/null",
     "--conf-dir=#{File.join(@dir, 'conf.d')}", "--pid-file=", "--log-facility=#{@log}",
     "--local-ttl=#{@ttl}", "--user=#{Etc.getpwuid(Process.uid).name}",
     *@local.map { |domain| "--local=/#{domain}/" }, *@records]
  end

  # Does it answer a query over UDP yet? (Any answer will do: NXDOMAIN for the probe name.)
  def ready?
    socket = UDPSocket.new
    socket.connect("127.0.0.1", @port)
    message = Resolv::DNS::Message.new(4242)
    message.add_question(Resolv::DNS::Name.create("probe.invalid."), Resolv::DNS::Resource::IN::A)
    socket.send(message.encode, 0)
    socket.wait_readable(0.2) && socket.recv(512).bytesize >= 12
  rescue SystemCallError, IOError
    false
  ensure
    socket&.close
  end
end
