# frozen_string_literal: true

# The Ruby half of UringMachine::Scheduler (its hooks are Rust: ext/uring_machine/src/scheduler/);
# loads scheduler/, what it leans on: blocking workers, the pidfd Process, the forked child's reset.

require "socket"
require_relative "scheduler/blocking_workers"
require_relative "scheduler/fork"
require_relative "scheduler/process"

module UringMachine
  # Ruby-side glue of the Fiber::Scheduler (the hooks themselves are in Rust): fiber creation,
  # and the few hooks that need a worker thread because the kernel offers no ring op for them.
  class Scheduler
    include FiberBody

    # What the hooks need is loaded when a scheduler is made (in the thread's root fiber, as a
    # rule), never lazily from a hook: an autoload in a fiber reads its files through the
    # scheduler, and the fibers that run meanwhile see a half-defined module (NameError).
    # UringMachine::DNS, for address_resolve, is not loaded with the gem: it requires resolv.
    module LoadsWhatHooksNeed
      def new(...)
        UringMachine.const_get(:DNS) # its autoload
        super
      end
    end
    singleton_class.prepend(LoadsWhatHooksNeed)

    # Fiber.schedule(*args, **options) { |*args| }: starts the fiber at once; the caller
    # continues when it first waits. The options (Fiber.new's) come as a flagged last
    # argument: a **options parameter would make a Hash for every fiber, even without them.
    ruby2_keywords def fiber(*args, &block)
      raise ArgumentError, "Fiber.schedule needs a block" unless block

      # Non-blocking is Fiber.new's default: no keyword Hash to make without options.
      fiber = if args.last.is_a?(Hash) && Hash.ruby2_keywords_hash?(args.last)
                Fiber.new(blocking: false, **args.pop, &__fiber_body__)
              else
                Fiber.new(&__fiber_body__)
              end
      UringMachine.__set_body__(fiber, block, args)
      __start_fiber__(fiber, false)
    end

    # UringMachine.spin under this scheduler: Fiber.schedule, but the fiber is stopped if its
    # parent finishes first.
    def spin(*args, name: nil, isolated: false, &block)
      raise ArgumentError, "spin needs a block" unless block

      __spin_block__(block, args, UringMachine.__fiber_name__(name), isolated)
    end

    # spin, with what UringMachine.spin checked passed as it is: no keyword Hash per fiber.
    def __spin_block__(block, args, name, isolated)
      fiber = Fiber.new(&__fiber_body__)
      UringMachine.__prepare_fiber__(fiber, block, args, name, isolated)
      __start_fiber__(fiber, true)
    end

    # spin, but the fiber starts at the next switch (UringMachine.spin(on_thread:) asks for it
    # from inside the event loop, where no fiber can be switched to).
    def __spin_queued__(*args, name: nil, isolated: false, &block)
      fiber = Fiber.new(&__fiber_body__)
      UringMachine.__prepare_fiber__(fiber, block, args, name, isolated)
      __queue_fiber__(fiber)
    end

    # Runs the event loop until every scheduled fiber has finished, without closing: more
    # fibers may be scheduled afterwards. An exception that escaped a fiber whose parent is the
    # calling fiber comes out of here. While the program is ending (a signal exception,
    # SystemExit or an exception sent by UringMachine.emit_signal_exception propagates, or one
    # arrives while it waits), the fibers are stopped instead (see #close).
    def run
      run_until_fibers_finish($!, false)
      true
    end

    # Runs until every scheduled fiber has finished, then stops the worker threads. Safe to
    # call again; Ruby calls it at Fiber.set_scheduler(nil) and at thread exit. When it runs
    # while an exception propagates ($!: the main fiber is ending with it, as when the main
    # code raised), or when a signal exception (Interrupt, SignalException), SystemExit or an
    # exception sent by UringMachine.emit_signal_exception arrives while it waits, the fibers
    # are stopped (UringMachine::Stop is raised in each, their ensure blocks run) and waited
    # for instead, and one that arrived is then raised.
    def close
      run_until_fibers_finish($!, true)
      @workers&.shutdown
      @workers = nil
      @closed = true
      CoreExt::SchedulersOpen.closed if @counted_open
      @counted_open = false
    end
    alias scheduler_close close

    def closed?
      @closed ? true : false
    end

    # Scheduler.new counted this scheduler among the open ones (CoreExt::SchedulersOpen);
    # close counts it out, once.
    private def __counted_open__
      @counted_open = true
    end

    # The addresses of a host name, for TCPSocket.new, Addrinfo.getaddrinfo &c.: through
    # UringMachine::DNS on the ring (no thread), or, when #dns is :getaddrinfo, getaddrinfo on a
    # worker thread (nsswitch sources other than files and dns: mDNS, LDAP, ...).
    def address_resolve(hostname)
      raise TypeError, "hostname must be a String, not #{hostname.class}" unless hostname.respond_to?(:to_str)

      host = hostname.to_str
      host = host.delete_prefix("[") if host.start_with?("[") # no copy for the usual name
      host = host.delete_suffix("]") if host.end_with?("]")
      resolver = dns
      unless resolver == :getaddrinfo
        resolver = DNS.default_resolver if resolver == :ring
        return DNS.address_resolve(host, resolver, families: LookupFamily.wanted)
      end

      begin
        blocking_workers.run(-> { Addrinfo.getaddrinfo(host, nil, nil, :STREAM).map(&:ip_address).uniq })
      rescue SocketError
        []
      end
    end

    # How address_resolve resolves names: :ring (UringMachine::DNS with the default resolver),
    # :getaddrinfo, or a UringMachine::DNS::Resolver. The default comes from the environment
    # variable UM_DNS ("getaddrinfo" or "ring"), else :ring.
    def dns
      @dns ||= DNS_MODES.fetch(ENV.fetch("UM_DNS", "ring").downcase) do |value|
        raise ArgumentError, "UM_DNS must be \"ring\" or \"getaddrinfo\", not #{value.inspect}"
      end
    end

    def dns=(mode)
      unless mode == :ring || mode == :getaddrinfo || (defined?(DNS::Resolver) && mode.is_a?(DNS::Resolver))
        raise ArgumentError, "dns must be :ring, :getaddrinfo or a UringMachine::DNS::Resolver, not #{mode.inspect}"
      end

      @dns = mode
    end

    DNS_MODES = { "ring" => :ring, "getaddrinfo" => :getaddrinfo }.freeze

    # IO.select: answered at once when something is ready (Ruby's own buffers included),
    # otherwise after the ring reports readiness on any of the IOs. The timeout is checked and
    # converted as IO.select does; one past the clock's range never passes.
    def io_select(readables, writables = nil, exceptables = nil, timeout = nil)
      seconds = forever?(timeout) ? nil : interval_seconds(timeout)
      deadline = seconds && ::Process.clock_gettime(::Process::CLOCK_MONOTONIC) + seconds
      polls = nil
      loop do
        ready = select_now(readables, writables, exceptables) # also checks the arguments
        return ready if ready

        polls ||= select_polls(readables, writables, exceptables)

        remaining = deadline && deadline - ::Process.clock_gettime(::Process::CLOCK_MONOTONIC)
        return nil if remaining && remaining <= 0
        return nil unless wait_any(polls, remaining)
      end
    end

    # Ruby 3.4+: work CRuby would otherwise do with the event loop's GVL released.
    def blocking_operation_wait(work)
      blocking_workers.run(work)
    end

    # The threads that run blocking work for this scheduler's fibers (address_resolve,
    # blocking_operation_wait, some process_wait calls): a UringMachine::BlockingWorkers, whose
    # maximum and idle_timeout may be changed (defaults: BlockingWorkers.maximum, .idle_timeout).
    def blocking_workers
      @workers ||= BlockingWorkers.new
    end

    # A UringMachine::Process (pidfd) for +pid+: wait, kill, alive?, close.
    def process_open(pid)
      UringMachine::Process.open(pid)
    end

    # Closes +io+ without blocking the thread: the fibers waiting on it get IOError (their ops
    # cancelled and drained first), Ruby forgets it, then a CLOSE op in the ring closes the
    # descriptor while other fibers run. Ruby 4.0 calls this hook with the Integer fd it is
    # about to close. Returns true. Like IO#close, this leaves descriptors 0-2 open (an IO or
    # an Integer: io_close(1) returns true and stdout stays open).
    def io_close(io)
      return true if io.is_a?(Integer) && io.between?(0, 2)
      return machine.close(io) && true if io.is_a?(Integer)
      raise TypeError, "expected an IO or an Integer file descriptor, not #{io.class}" unless io.is_a?(IO)
      return true if io.closed?

      fd = io.fileno
      UringMachine.release_fd_waiters(fd) if fd > 2 # before Ruby's close, which may wait for them
      io.autoclose = false
      begin
        io.close # flushes; Ruby forgets the descriptor but leaves it open
      ensure
        machine.close(fd) if fd > 2
      end
      true
    end

    # Called in a forked child on the scheduler the forking thread had, once the child was
    # detached from it (see scheduler/fork.rb): returns the scheduler the child continues with.
    # nil, the default, leaves the child without one, as Ruby 4.0 does; a subclass may return a
    # fresh scheduler (UringMachine::Scheduler.new) instead.
    def process_fork
      nil
    end

    # Ruby 4.0's IO.select takes Float::INFINITY for no timeout (earlier ones raise RangeError).
    SELECT_TAKES_INFINITY = (RUBY_VERSION.split(".").map(&:to_i) <=> [4, 0]) >= 0
    private_constant :SELECT_TAKES_INFINITY

    private

    # Whether IO.select's timeout means none at all.
    def forever?(timeout)
      timeout.nil? || (SELECT_TAKES_INFINITY && timeout.is_a?(Float) && timeout.infinite? == 1)
    end

    # IO.select without waiting. From 3.2 on, IO.select calls io_select in a non-blocking fiber,
    # so it runs in a blocking one; on 3.1 (no Fiber.blocking) a zero timeout goes straight to
    # Ruby's own select (see IOSelect in core_ext/io.rb).
    def select_now(readables, writables, exceptables)
      return IO.select(readables, writables, exceptables, 0) unless Fiber.respond_to?(:blocking)

      Fiber.blocking { IO.select(readables, writables, exceptables, 0) }
    end

    def select_polls(readables, writables, exceptables)
      [[readables, IO::READABLE], [writables, IO::WRITABLE], [exceptables, IO::PRIORITY]].flat_map do |ios, events|
        (ios || []).map { |io| [io, events] } # Arrays (or nil): IO.select checked them
      end
    end

    # waitpid with options the ring cannot express (any child, process groups, WNOHANG).
    def process_wait_on_worker(pid, flags)
      blocking_workers.run(-> { ::Process::Status.wait(pid, flags) })
    end
  end
end
