# frozen_string_literal: true

require_relative "test_helper"

# Closing the listener that accept_each waits on, from another fiber, raises IOError ("stream
# closed in another fiber") in it, as in accept. Found by the fuzz campaign: when the close came
# while the multishot accept was still in the submission queue, the op failed with EBADF and
# that error, not the close's IOError, came out of accept_each.
class TestMultishotClose < Minitest::Test
  def machine
    UringMachine.machine # the close wakes the waiters of this thread's machine
  end

  def test_a_close_while_the_op_is_queued_raises_io_error
    server = TCPServer.new("127.0.0.1", 0)
    acceptor = machine.spin do
      machine.accept_each(server) { |fd| IO.for_fd(fd).close }
      :returned
    rescue StandardError => e
      [e.class, e.message]
    end
    closer = machine.spin { server.close } # runs right after the acceptor queued its op
    assert_equal [IOError, "stream closed in another fiber"], machine.join(acceptor)
    machine.join(closer)
  ensure
    server&.close unless server&.closed?
  end

  def test_a_close_while_the_op_waits_raises_io_error
    server = TCPServer.new("127.0.0.1", 0)
    acceptor = machine.spin do
      machine.accept_each(server) { |fd| IO.for_fd(fd).close }
      :returned
    rescue StandardError => e
      [e.class, e.message]
    end
    closer = machine.spin do
      machine.sleep(0.01) # the acceptor's op is in the kernel by now
      server.close
    end
    assert_equal [IOError, "stream closed in another fiber"], machine.join(acceptor)
    machine.join(closer)
  ensure
    server&.close unless server&.closed?
  end
end
