# frozen_string_literal: true

require_relative "test_helper"

# An interrupt that reaches a fiber spun with the Machine API before it has started (it starts
# at the spinner's next switch) is raised at the fiber's first wait, like any interrupt: the
# block runs up to there, so its ensure blocks run and it can release what it was handed.
# Found by the fuzz campaign (issue 18, item 7): an accept loop hands each connection to a
# spun handler that closes it in an ensure; a handler interrupted before it started never ran,
# the connection stayed open, and its client (and so the whole loop) waited forever.
class TestInterruptBeforeStart < MachineTest
  Stop = Class.new(StandardError)

  def test_an_exception_scheduled_before_the_start_is_raised_at_the_first_wait
    steps = []
    fiber = machine.spin do
      steps << :started
      machine.sleep(5)
      steps << :slept
    rescue Stop => e
      steps << e.message
    ensure
      steps << :ensure
    end
    machine.schedule(fiber, Stop.new("stopped at the first wait"))
    machine.join(fiber)
    assert_equal [:started, "stopped at the first wait", :ensure], steps
  end

  def test_fiber_stop_before_the_start_runs_the_ensure_blocks
    steps = []
    fiber = machine.spin do
      steps << :started
      machine.sleep(5)
    ensure
      steps << :ensure
    end
    fiber.stop(:stopped)
    assert_equal :stopped, machine.join(fiber)
    assert_equal %i[started ensure], steps
  end

  def test_a_handler_interrupted_before_it_starts_closes_its_connection
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.local_address.ip_port)
    connection = nil
    in_fiber do
      connection = IO.for_fd(machine.accept(server), autoclose: true)
      handler = machine.spin(connection) do |io|
        machine.read(io, +"", 64) # nothing to read yet: it waits, and the interrupt comes
      ensure
        io.close
      end
      machine.schedule(handler, Stop.new("shutting down"))
      assert_raises(Stop) { machine.join(handler) }
    end
    assert connection.closed?, "the handler's ensure closed the connection"
    assert_nil client.read(1), "the client sees the end of the stream instead of waiting forever"
  ensure
    [client, server, connection].each { |io| io&.close unless io&.closed? }
  end

  def test_an_interrupt_to_a_fiber_that_never_waits_is_dropped
    fiber = machine.spin { :done_without_waiting }
    machine.schedule(fiber, Stop.new("never raised"))
    assert_equal :done_without_waiting, machine.join(fiber)
  end
end
