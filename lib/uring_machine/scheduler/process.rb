# frozen_string_literal: true

# UringMachine::Process, its Ruby half: a process held through a pidfd.

require "io/wait"

module UringMachine
  # A process held through a pidfd (the Rust half is ops/process_handle.rs):
  #
  #   child = UringMachine::Process.spawn("sleep", "1")   # Process.spawn's arguments
  #   child.kill(:TERM)                                   # never reaches a recycled pid
  #   child.wait                                          # => #<Process::Status ... SIGTERM>
  #   child.close
  #
  # UringMachine::Process.open(pid) (or Scheduler#process_open) holds an existing process.
  class Process
    # Process.spawn(*args, **options), held through a pidfd from the start.
    def self.spawn(*args, **options)
      pid = ::Process.spawn(*args, **options)
      begin
        open(pid)
      rescue SystemCallError
        ::Process.detach(pid) # no descriptor left: at least do not leave a zombie behind
        raise
      end
    end

    # Reaps the process and returns its Process::Status (also $?). Under a UringMachine
    # scheduler, or on a thread with a machine, a WAITID in the ring parks only this fiber;
    # elsewhere (no machine, another scheduler) it waits for the pidfd like any IO. Errno::ECHILD
    # when it is not a child of ours or someone else reaped it; closing the handle meanwhile
    # raises IOError in the waiter.
    def wait
      machine = UringMachine.current_machine(create: false)
      return wait_on(machine) if machine

      loop do
        status = reap_if_exited
        return status if status

        pidfd_io.wait_readable
      end
    end

    # Sends +signal+ (a name such as :TERM, "SIGTERM" or "TERM", or a number; 0 only checks)
    # through the pidfd. Returns true; Errno::ESRCH once the process was reaped.
    def kill(signal = :TERM)
      send_signal(signal_number(signal))
    end

    # Closes the pidfd (the process goes on); fibers waiting on it get IOError.
    def close
      @pidfd_io&.close
      fd = close_pidfd
      UringMachine.wake_fd_waiters(fd) if fd
      nil
    end

    def inspect
      state = if closed? then "closed"
              elsif status then status.inspect
              else "pidfd #{fileno}"
              end
      "#<#{self.class} #{pid} #{state}>"
    end

    private

    def pidfd_io
      @pidfd_io ||= IO.for_fd(fileno, autoclose: false)
    end

    def signal_number(signal)
      case signal
      when Integer
        raise ArgumentError, "process groups are not signalled through a pidfd: #{signal}" if signal.negative?

        signal
      when Symbol, String
        name = signal.to_s.delete_prefix("SIG")
        Signal.list.fetch(name) { raise ArgumentError, "unsupported signal 'SIG#{name}'" }
      else
        raise TypeError, "signal must be an Integer, Symbol or String, not #{signal.class}"
      end
    end
  end
end
