# frozen_string_literal: true

module UringMachine
  # Ruby 3.1-3.4: IO#close wakes threads blocked on the descriptor, but not fibers whose read,
  # write or poll waits in a ring (the op holds the file open, so it would wait forever). After
  # Ruby closed the descriptor, the fibers of this thread's machines that waited on it get
  # IOError, once their ops are cancelled and drained (UringMachine.wake_fd_waiters, in
  # scheduler/close.rs). Ruby 4.0 does this itself through the fiber_interrupt hook.
  module CloseWakesFibers
    def close
      fd = descriptor_to_close
      super
    ensure
      UringMachine.wake_fd_waiters(fd) if fd && closed?
    end

    # For a simplex IO these are close; a duplex one (sockets, IO.popen "r+") stays open, and
    # shutdown(2) already ends a socket's pending reads and writes.
    def close_read
      fd = descriptor_to_close
      super
    ensure
      UringMachine.wake_fd_waiters(fd) if fd && closed?
    end

    def close_write
      fd = descriptor_to_close
      super
    ensure
      UringMachine.wake_fd_waiters(fd) if fd && closed?
    end

    private

    # The fd that closing this IO closes: none when it is closed already, when autoclose is off
    # (IO.for_fd(fd, autoclose: false), Scheduler#io_close) or for 0-2, which Ruby keeps open.
    def descriptor_to_close
      return nil if closed? || !autoclose?

      fd = fileno
      fd > 2 ? fd : nil
    end
  end

  # Installed with the first Machine: programs that load the gem without using it keep the plain
  # IO#close.
  module InstallCloseWakesFibers
    def new(...)
      IO.prepend(CloseWakesFibers) unless IO <= CloseWakesFibers
      super
    end
  end

  Machine.singleton_class.prepend(InstallCloseWakesFibers) if RUBY_VERSION < "4"
end
