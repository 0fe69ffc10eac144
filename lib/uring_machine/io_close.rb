# frozen_string_literal: true

require "fcntl"

module UringMachine
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
      fd = descriptor_to_close
      serial = UringMachine.__op_serial__
      super
    ensure
      UringMachine.wake_fd_waiters(fd, serial) if fd && closed?
    end

    # For a simplex IO these are close; a duplex one (sockets, IO.popen "r+") stays open, and
    # shutdown(2) already ends a socket's pending reads and writes.
    def close_read
      fd = descriptor_to_close
      serial = UringMachine.__op_serial__
      super
    ensure
      UringMachine.wake_fd_waiters(fd, serial) if fd && closed?
    end

    def close_write
      fd = descriptor_to_close
      serial = UringMachine.__op_serial__
      super
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

  OnFirstMachine.install { IO.prepend(RUBY_VERSION < "4" ? CloseWakesFibers : CloseReleasesFibers) }
end
