# frozen_string_literal: true

# What the gem changes in IO, instance and class methods (see core_ext.rb for how and when
# each is installed). The fast paths' and coalesced writes' methods are in Rust
# (ext/uring_machine/src/scheduler/); this file says where they go.

require "fcntl"

module UringMachine
  # --- IO#close, #close_read, #close_write: fibers waiting on the descriptor are woken ---
  # What closing an IO closes.
  module ClosedDescriptor
    private

    # The fd that closing this IO closes: none when it is closed already, when autoclose is off
    # (IO.for_fd(fd, autoclose: false), Scheduler#io_close) or for 0-2, which Ruby keeps open.
    def descriptor_to_close
      return nil if closed? || !autoclose?

      fd = fileno
      fd > 2 ? fd : nil
    end
  end

  # Ruby 3.1-3.4: IO#close wakes threads blocked on the descriptor, but not fibers whose read,
  # write or poll waits in a ring (the op holds the file open, so it would wait forever). After
  # Ruby closed the descriptor, the fibers of this thread's machines that waited on it get
  # IOError, once their ops are cancelled and drained (UringMachine.wake_fd_waiters, in
  # scheduler/close.rs). Ruby 4.0 wakes them itself, with a catch: see CloseReleasesFibers.
  # Only ops that started before the close are interrupted: on 3.4 the close itself waits (on a
  # worker thread), and meanwhile another fiber may open a file that gets the same number.
  module CloseWakesFibers
    include ClosedDescriptor

    def close
      waking_waiters { super }
    end

    # For a simplex IO these are close; a duplex one (sockets, IO.popen "r+") stays open, and
    # shutdown(2) already ends a socket's pending reads and writes.
    def close_read
      waking_waiters { super }
    end

    def close_write
      waking_waiters { super }
    end

    private

    def waking_waiters
      fd = descriptor_to_close
      serial = UringMachine.__op_serial__
      yield
    ensure
      UringMachine.wake_fd_waiters(fd, serial) if fd && closed?
    end
  end

  # Ruby 4.0+: IO#close raises IOError in the fibers waiting on the IO (fiber_interrupt), then
  # waits until they have left their operation. From a blocking fiber, such as the thread's
  # root fiber where a program's main code runs, that wait puts the whole thread to sleep, so
  # those fibers never run and the close hangs; and fibers in IO.select are not woken at all.
  # So the fibers of this thread's machines that wait on the descriptor are interrupted first,
  # and run until they have left (UringMachine.release_fd_waiters, in scheduler/close.rs). A
  # fiber that had another interrupt pending takes that one first (the IOError waits behind
  # it) and may wait on the descriptor again, before the close: those waits are woken once the
  # descriptor is closed, as on Ruby 3.x.
  module CloseReleasesFibers
    include ClosedDescriptor

    def close
      closing { super }
    end

    # On a simplex IO (a pipe end) these are close; a duplex one (a socket, a socketpair of
    # IO.popen "r+") stays open, and shutdown(2) already ends the pending reads and writes.
    def close_read
      simplex?(File::RDONLY) ? closing { super } : super
    end

    def close_write
      simplex?(File::WRONLY) ? closing { super } : super
    end

    private

    def closing
      fd = descriptor_to_close
      UringMachine.release_fd_waiters(fd) if fd
      serial = UringMachine.__op_serial__
      yield
    ensure
      UringMachine.wake_fd_waiters(fd, serial) if fd && serial && closed?
    end

    def simplex?(access_mode)
      !closed? && (fcntl(Fcntl::F_GETFL) & Fcntl::O_ACCMODE) == access_mode
    rescue SystemCallError, IOError, NotImplementedError
      false
    end
  end

  CoreExt.declare(
    IO, CloseWakesFibers, methods: %i[close close_read close_write], at: :first_machine, ruby: "< 4.0",
    why: "fibers whose ops wait on the descriptor in a ring get IOError (Ruby wakes only threads)"
  )
  CoreExt.declare(
    IO, CloseReleasesFibers, methods: %i[close close_read close_write], at: :first_machine, ruby: "4.0+",
    why: "fibers waiting on the descriptor leave before Ruby's close waits for them (else it hangs)"
  )

  # --- IO#write, #puts, #print with several pieces: one write ---
  # IO#write with several arguments, IO#puts with several lines and IO#print with several
  # pieces are one write, not one per piece, when the current fiber is non-blocking under a
  # UringMachine::Scheduler and the IO writes them unchanged and at once (sync mode, nothing
  # buffered, no encoding conversion): under any fiber scheduler CRuby writes each piece
  # separately, so on TCP the second segment waits for the peer's delayed ACK (~40 ms). The
  # methods (in Rust, fast/coalesce.rs) fall back to CRuby's own in every other state.
  # write(string) is also FastIO's fast path, and all three count the bytes they moved for the
  # exception that stops them (fast/write_count.rs).
  #
  # Opt out: UringMachine.coalesce_writes = false, or URING_MACHINE_COALESCE_WRITES=0 in the
  # environment when the gem loads.
  self.coalesce_writes = ENV.fetch("URING_MACHINE_COALESCE_WRITES", "1") != "0"
  CoreExt.declare(
    IO, CoalescedWrites, methods: %i[write puts print], at: :first_scheduler, in_place: :while_a_scheduler_is_open,
    switch: "UringMachine.coalesce_writes = false, URING_MACHINE_COALESCE_WRITES=0",
    why: "several pieces are one write (CRuby writes each: on TCP the next waits ~40 ms for an ACK)"
  )

  # --- IO#readpartial, #sysread, #read(n), the buffered readers: straight to the fd ---
  # IO#readpartial, IO#sysread, IO#read(length) and IO#write(string) go straight to the fd
  # (a direct non-blocking syscall; CRuby's method when it would block) when the current fiber
  # is non-blocking under a UringMachine::Scheduler whose class keeps our io_read/io_write
  # (a subclass that overrides them sees every read and write) and the IO is in a state where
  # that is exactly what CRuby's method would do: nothing in its read-ahead or write buffer, no
  # encoding conversion or newline decorator, sync writes without a write lock. The methods
  # (in Rust, fast/io.rs) fall back to CRuby's own in every other case. The buffered
  # readers (gets, each_line, readlines, readline, getc, getbyte, eof?, ...) fill the IO's empty
  # read-ahead buffer with a direct read and then run CRuby's method (fast/lines.rs).
  #
  # Opt out: UringMachine.fast_io = false, or URING_MACHINE_FAST_IO=0 in the environment when
  # the gem loads.
  self.fast_io = ENV.fetch("URING_MACHINE_FAST_IO", "1") != "0"
  CoreExt.declare(
    IO, FastIO,
    methods: %i[readpartial sysread read gets readline each_line readlines getc readchar getbyte readbyte eof? eof],
    at: :first_scheduler, in_place: :while_a_scheduler_is_open,
    switch: "UringMachine.fast_io = false, URING_MACHINE_FAST_IO=0",
    why: "a direct non-blocking syscall instead of hook dispatch and an IO::Buffer per call"
  )

  # --- IO#read_nonblock, #syswrite: their one syscall made directly ---
  # IO#read_nonblock, IO#syswrite and BasicSocket#recv (core_ext/basic_socket.rb) make their
  # syscall themselves (UringMachine::FastCalls, in Rust: fast/nonblock.rs and
  # fast/socket.rs) when the current fiber is non-blocking under a UringMachine::Scheduler and
  # CRuby's method would make just that syscall: read_nonblock answers EAGAIN and EOF as
  # CRuby's does; the others take CRuby's method when it would block. (BasicSocket#send stays
  # CRuby's: no measurable gain.) FastCalls answers false for "CRuby's method", which none of
  # these returns. Switched with UringMachine.fast_io.
  #
  # These replace the methods (CRuby's stay under a private alias) instead of being prepended:
  # a prepended method's `super` costs ~130 ns on 3.1 (~220 with keywords), 15-30% of these
  # calls when they take CRuby's method (no scheduler, blocking fibers); a call of the alias
  # costs ~40.
  CoreExt.declare(
    IO, FastCalls, methods: %i[read_nonblock syswrite], mechanism: :alias, at: :first_scheduler,
    in_place: :while_a_scheduler_is_open,
    switch: "UringMachine.fast_io = false, URING_MACHINE_FAST_IO=0",
    why: "their one syscall made directly (an alias, not a prepend: super costs too much here)"
  ) do
    CoreExt.keep_cruby(IO, :read_nonblock)
    CoreExt.keep_cruby(IO, :syswrite)
    IO.class_eval do
      def read_nonblock(maxlen, outbuf = nil, exception: true)
        result = UringMachine::FastCalls.read_nonblock(self, maxlen, outbuf, exception)
        result.equal?(false) ? __cruby_read_nonblock(maxlen, outbuf, exception: exception) : result
      end
    end
    # A method of the extension, so that CRuby's warnings (syswrite for buffered IO) name the
    # caller's line, as without the gem.
    IO.define_method(:syswrite, UringMachine::FastCalls.instance_method(:syswrite))
  end

  # --- IO#pwrite on Ruby 3.3 and 3.4: to the scheduler with the GVL held ---
  # CRuby 3.3 and 3.4 call the scheduler's io_pwrite hook from IO#pwrite while the GVL is
  # released (internal_pwrite_func runs inside a blocking region), which corrupts the VM under
  # any scheduler. While one of ours is active, IO#pwrite goes to the scheduler directly, with
  # the GVL held.
  module SafePwrite
    def pwrite(object, offset)
      scheduler = Fiber.scheduler
      return super unless scheduler.is_a?(Scheduler) && !Fiber.current.blocking?

      scheduler.pwrite_string(self, object.is_a?(String) ? object : object.to_s, offset)
    end
  end

  CoreExt.declare(
    IO, SafePwrite, methods: %i[pwrite], at: :gem_load, ruby: "3.3-3.4",
    why: "CRuby calls the io_pwrite hook without the GVL there, which corrupts the VM"
  )

  # --- IO.copy_stream: splice(2) in the ring ---
  # IO.copy_stream under a scheduler that has io_splice: when both ends are descriptors (an IO,
  # a File, or a path) the bytes move with splice(2) inside the kernel while the calling fiber
  # waits in the ring and the others run (file to file: copy_file_range(2) in pieces, the
  # others running between them). Anything else (StringIO, objects with read/write, no
  # scheduler, a blocking fiber) goes to CRuby's own copy_stream, unchanged.
  module CopyStream
    READ_FLAGS = File::RDONLY | File::NOCTTY
    WRITE_FLAGS = File::WRONLY | File::CREAT | File::TRUNC | File::NOCTTY

    def copy_stream(src, dst, copy_length = nil, src_offset = nil)
      scheduler = Fiber.scheduler
      return super unless scheduler.respond_to?(:io_splice) && !Fiber.current.blocking?
      return super unless CopyStream.descriptor?(src) && CopyStream.descriptor?(dst)
      return super unless CopyStream.count?(copy_length) && CopyStream.count?(src_offset)

      CopyStream.splice(scheduler, src, dst, copy_length, src_offset)
    end

    class << self
      # What CRuby's copy_stream treats as a descriptor: an IO, or a path to open.
      def descriptor?(object)
        !object.equal?(ARGF) && (object.is_a?(IO) || object.is_a?(String) || object.respond_to?(:to_path))
      end

      # nil or an Integer; CRuby itself converts (or rejects) anything else.
      def count?(value)
        value.nil? || value.is_a?(Integer)
      end

      def splice(scheduler, src, dst, copy_length, src_offset)
        # Negative lengths and offsets mean "all" and "the current position", as in CRuby.
        copy_length = nil if copy_length&.negative?
        src_offset = nil if src_offset&.negative?
        src_io, close_src = open_end(src, READ_FLAGS)
        begin
          dst_io, close_dst = open_end(dst, WRITE_FLAGS, 0o666)
          begin
            copy(scheduler, src_io, dst_io, copy_length, src_offset)
          ensure
            dst_io.close if close_dst
          end
        ensure
          src_io.close if close_src
        end
      end

      private

      def open_end(object, flags, *perm)
        io = object.is_a?(IO) ? object : IO.try_convert(object)
        return [io, false] if io

        [File.new(object, flags, *perm), true]
      end

      # Bytes Ruby already read ahead from src go first (unless reading at an offset); dst's
      # own write buffer is flushed before the kernel appends to the descriptor.
      def copy(scheduler, src_io, dst_io, copy_length, src_offset)
        total = 0
        read_ahead = UringMachine.__copy_stream_check__(src_io, dst_io)
        if src_offset.nil? && read_ahead.positive?
          chunk = src_io.readpartial(copy_length ? [read_ahead, copy_length].min : read_ahead)
          dst_io.write(chunk)
          total += chunk.bytesize
          copy_length -= chunk.bytesize if copy_length
        end
        dst_io.flush
        return total if copy_length&.zero?

        begin
          total + scheduler.io_splice(src_io, dst_io, copy_length, src_offset)
        rescue Exception => e # rubocop:disable Lint/RescueException
          # An interrupted copy tells how much went out in all (see PartialWrite).
          PartialWrite.__add__(e, total) if total.positive?
          raise
        end
      end
    end
  end

  CoreExt.declare(
    IO, CopyStream, singleton: true, methods: %i[copy_stream], at: :gem_load,
    why: "between descriptors, under a scheduler with io_splice, splice(2) in the ring (file to file: copy_file_range)"
  )

  # --- IO.select on Ruby 3.1: waits in the ring ---
  # Ruby 3.1 has no io_select hook: IO.select in a fiber blocks the whole thread, so a server
  # that selects on its listening sockets (WEBrick) starves every other fiber. Under our
  # scheduler, in a non-blocking fiber, an IO.select that may wait goes to Scheduler#io_select
  # instead, which waits in the ring while the other fibers run. A zero (or invalid) timeout,
  # no scheduler, another scheduler or a blocking fiber: Ruby's own IO.select, unchanged.
  # Ruby 3.2+ calls io_select itself; this module is only prepended on 3.1.
  module IOSelect
    def select(*args)
      scheduler = Fiber.scheduler
      return super unless scheduler.is_a?(Scheduler) && !Fiber.current.blocking?
      return super unless IOSelect.may_wait?(args)

      scheduler.io_select(*args)
    end

    # 1 to 4 arguments, and a timeout that is nil or a positive Integer, Float or Rational:
    # anything else is answered (or rejected) by Ruby at once. (Other objects are not asked
    # whether they are positive: that may raise what IO.select would not.)
    def self.may_wait?(args)
      return false unless args.size.between?(1, 4)

      timeout = args[3]
      timeout.nil? || (REAL.any? { |c| timeout.is_a?(c) } && timeout.positive?)
    end

    REAL = [Integer, Float, Rational].freeze
  end

  CoreExt.declare(
    IO, IOSelect, singleton: true, methods: %i[select], at: :gem_load, ruby: "3.1",
    why: "Ruby 3.1 has no io_select hook: IO.select would block every fiber of the thread"
  )
end

