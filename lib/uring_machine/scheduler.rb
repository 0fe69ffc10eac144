# frozen_string_literal: true

require "socket"
require_relative "blocking_workers"

module UringMachine
  # Ruby-side glue of the Fiber::Scheduler (the hooks themselves are in Rust): fiber creation,
  # and the few hooks that need a worker thread because the kernel offers no ring op for them.
  class Scheduler
    # Fiber.schedule(*args, **options) { |*args| }: starts the fiber at once; the caller
    # continues when it first waits.
    def fiber(*args, **options, &block)
      raise ArgumentError, "Fiber.schedule needs a block" unless block

      parent = Fiber.current
      fiber = Fiber.new(blocking: false, **options) { __run_fiber__(block, args, parent) }
      __start_fiber__(fiber)
    end

    # Runs the event loop until every scheduled fiber has finished, without closing: more
    # fibers may be scheduled afterwards. An exception that escaped a fiber whose parent is the
    # calling fiber comes out of here. While the program is ending (see #close), the fibers are
    # stopped instead.
    def run
      run_until_fibers_finish($!)
      true
    end

    # Runs until every scheduled fiber has finished, then stops the worker threads. Safe to
    # call again; Ruby calls it at Fiber.set_scheduler(nil) and at thread exit. When the
    # program is ending -- close runs while a signal exception (Interrupt, SignalException),
    # SystemExit or an exception sent by UringMachine.emit_signal_exception propagates, or one
    # arrives while it waits -- the fibers are stopped (UringMachine::Stop is raised in each,
    # their ensure blocks run) and waited for instead; one that arrived is then raised.
    def close
      run_until_fibers_finish($!)
      @workers&.shutdown
      @workers = nil
      @closed = true
    end
    alias scheduler_close close

    def closed?
      @closed ? true : false
    end

    # getaddrinfo blocks; a worker thread runs it while other fibers go on.
    def address_resolve(hostname)
      raise TypeError, "hostname must be a String, not #{hostname.class}" unless hostname.respond_to?(:to_str)

      host = hostname.to_str.delete_prefix("[").delete_suffix("]")
      workers.run(-> { Addrinfo.getaddrinfo(host, nil, nil, :STREAM).map(&:ip_address).uniq })
    rescue SocketError
      []
    end

    # IO.select: answered at once when something is ready (Ruby's own buffers included),
    # otherwise after the ring reports readiness on any of the IOs.
    def io_select(readables, writables = nil, exceptables = nil, timeout = nil)
      deadline = timeout && ::Process.clock_gettime(::Process::CLOCK_MONOTONIC) + timeout
      polls = select_polls(readables, writables, exceptables)
      loop do
        ready = Fiber.blocking { IO.select(readables, writables, exceptables, 0) }
        return ready if ready

        remaining = deadline && deadline - ::Process.clock_gettime(::Process::CLOCK_MONOTONIC)
        return nil if remaining && remaining <= 0
        return nil unless wait_any(polls, remaining)
      end
    end

    # Ruby 3.4+: work CRuby would otherwise do with the event loop's GVL released.
    def blocking_operation_wait(work)
      workers.run(work)
    end

    # A UringMachine::Process (pidfd) for +pid+: wait, kill, alive?, close.
    def process_open(pid)
      UringMachine::Process.open(pid)
    end

    # Closes +io+ without blocking the thread: the fibers waiting on it get IOError (their ops
    # cancelled and drained first), Ruby forgets it, then a CLOSE op in the ring closes the
    # descriptor while other fibers run. Ruby 4.0 calls this hook with the Integer fd it is
    # about to close. Returns true. Like IO#close, this leaves descriptors 0-2 open.
    def io_close(io)
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
    # detached from it (see fork.rb): returns the scheduler the child continues with. nil, the
    # default, leaves the child without one, as Ruby 4.0 does; a subclass may return a fresh
    # scheduler (UringMachine::Scheduler.new) instead.
    def process_fork
      nil
    end

    private

    def workers
      @workers ||= BlockingWorkers.new
    end

    def select_polls(readables, writables, exceptables)
      [[readables, IO::READABLE], [writables, IO::WRITABLE], [exceptables, IO::PRIORITY]].flat_map do |ios, events|
        Array(ios).map { |io| [io, events] }
      end
    end

    # waitpid with options the ring cannot express (any child, process groups, WNOHANG).
    def process_wait_on_worker(pid, flags)
      workers.run(-> { ::Process::Status.wait(pid, flags) })
    end
  end
end
