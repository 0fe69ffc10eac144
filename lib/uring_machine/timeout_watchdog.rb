# frozen_string_literal: true

# The timeout watchdog's thread: it interrupts a timeout's block that never comes back to its
# event loop (`Timeout.timeout(1) { nil while true }`), as plain Ruby's timer thread does; its
# rounds are in ext/uring_machine/src/machine/watchdog.rs.

module UringMachine
  # One thread per process, started with the first timeout (by the extension); it sleeps until
  # the next round, or until woken when it has had nothing to watch for a while. Killed, it is
  # started again by the next timeout.
  module TimeoutWatchdog
    def self.__start__
      @thread = Thread.new do
        Thread.current.name = "uring_machine timeout watchdog"
        Thread.current.report_on_exception = false
        loop do
          wait = UringMachine.__watchdog_round__
          wait ? sleep(wait) : Thread.stop
        end
      ensure
        UringMachine.__watchdog_ended__ # killed: the next timeout starts another
      end
    end

    # The watchdog's thread, once started (deadlock detection does not count it: it raises
    # only timeouts, whose timers keep their own thread's loop busy anyway).
    def self.__thread__
      @thread
    end
  end
end
