# frozen_string_literal: true

# UringMachine::DNS, DNS over the ring (UringMachine::DNS.lookup, DNS::Server); its parts are in
# dns/. Not loaded with the gem: the first Scheduler.new or first use loads it (it requires resolv).

require "resolv"
require "socket"

module UringMachine
  # DNS through the ring: a stub resolver (UringMachine::DNS.lookup, behind
  # Scheduler#address_resolve) and a small server (UringMachine::DNS::Server). Queries and
  # answers are Resolv::DNS::Message objects; sockets, waits and timeouts are the Machine's, so
  # a lookup parks only its fiber. See README.md, "DNS".
  module DNS
    class << self
      # The records of type +type+ (:A, :AAAA, :CNAME, :MX, :TXT, :SRV, :PTR, :NS, :SOA, or a
      # Resolv::DNS::Resource class) for +name+, as Resolv::DNS::Resource objects (the classes
      # Resolv::DNS#getresources returns), through the process-wide default resolver
      # (/etc/hosts, /etc/resolv.conf). For :PTR, +name+ may be an IP address. An empty Array
      # when the name exists without such records; raises DNS::NXDomain when it does not exist.
      def lookup(name, type = :A)
        default_resolver.lookup(name, type)
      end

      # The IP addresses of +name+ as Strings (see Resolver#addresses).
      def addresses(name, families: nil)
        default_resolver.addresses(name, families: families)
      end

      # The resolver DNS.lookup uses: one per process, configured from /etc/resolv.conf and
      # /etc/hosts (both re-read when they change), with a shared cache.
      def default_resolver
        resolver = @default_resolver # set once per process: no lock to read it
        return resolver if resolver && @default_resolver_pid == ::Process.pid

        @default_resolver_lock.synchronize do
          @default_resolver = nil if @default_resolver_pid != ::Process.pid
          @default_resolver_pid = ::Process.pid
          @default_resolver ||= Resolver.new
        end
      end

      # Monotonic seconds: deadlines, TTLs and file checks.
      def clock
        ::Process.clock_gettime(::Process::CLOCK_MONOTONIC)
      end

      # Replaces the default resolver (nil: a fresh one from the system files at next use).
      def default_resolver=(resolver)
        raise TypeError, "expected a UringMachine::DNS::Resolver, not #{resolver.class}" unless resolver.nil? || resolver.is_a?(Resolver)

        @default_resolver_lock.synchronize do
          @default_resolver_pid = ::Process.pid # this process's, or the getter would drop it
          @default_resolver = resolver
        end
      end
    end
    @default_resolver_lock = Thread::Mutex.new
  end
end

require_relative "dns/errors"
require_relative "dns/types"
require_relative "dns/resolv_conf"
require_relative "dns/hosts"
require_relative "dns/cache"
require_relative "dns/resolver"
require_relative "dns/resolver_addresses"
require_relative "dns/address_resolve"
require_relative "dns/transaction"
require_relative "dns/server"
