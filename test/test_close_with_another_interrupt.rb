# frozen_string_literal: true

require_relative "test_helper"

# Closing an IO that a fiber waits on raises IOError in that fiber, even when the fiber had
# another interrupt pending: it handles that one first (the IOError waits behind it) and may
# wait on the IO again. Ruby 4.0's close (CloseReleasesFibers, core_ext/io.rb) runs such waiters
# until they have left their op before Ruby closes the descriptor; it waited for the new op as
# well, forever. Found by the fuzz campaign on Ruby 4.0.5: an accept loop that the chaos had
# interrupted hung as its listener was closed (issue 18, item 7). Ruby 3.x closes first and
# wakes the waiters after, which the same test covers.
class TestCloseWithAnotherInterrupt < Minitest::Test
  Stop = Class.new(StandardError)

  # Runs the block in a thread of its own (a fresh machine), within +limit+ seconds.
  def in_thread(limit: 10, &block)
    thread = Thread.new(&block)
    thread.report_on_exception = false
    return thread.value if thread.join(limit)

    thread.kill
    flunk "the close did not return within #{limit}s"
  end

  def test_a_waiter_that_takes_another_interrupt_first_still_gets_the_io_error
    events = in_thread do
      machine = UringMachine.machine
      server = TCPServer.new("127.0.0.1", 0)
      events = []
      acceptor = machine.spin do
        loop do
          machine.accept(server)
        rescue Stop
          events << :stop # and back to waiting on the listener
        rescue IOError
          events << :closed
          break
        end
      end
      machine.snooze # the acceptor waits in accept
      machine.schedule(acceptor, Stop.new("first")) # pending: its accept is being cancelled
      server.close # before the acceptor ran again
      machine.join(acceptor)
      events
    end
    assert_equal %i[stop closed], events
  end
end
