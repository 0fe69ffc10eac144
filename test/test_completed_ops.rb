# frozen_string_literal: true

require_relative "test_helper"

# An op the kernel completed is never thrown away: when an interrupt (Machine#schedule with an
# exception, Fiber#raise, a timeout) reaches a fiber whose op has already succeeded, the op's
# result is returned and the exception is raised at the fiber's next wait.
#
# The interrupts here come from a fiber that runs after the victim's completion was collected
# and before the victim runs again: both wait in the ring, and the interrupter's own read
# completes first in the same batch. No timing is involved.
class TestCompletedOps < MachineTest
  Stop = Class.new(StandardError)

  def setup
    super
    @trigger_r, @trigger_w = IO.pipe
  end

  def teardown
    [@trigger_r, @trigger_w].each { |io| io&.close }
    super
  end

  # Spins an interrupter (waiting on the trigger pipe), then the victim running +op+; lets
  # both submit their ops; then writes the trigger and calls +complete+, so that the victim's op
  # completes right after the interrupter's read. The interrupter calls +interrupt+ with the
  # victim. Returns the victim.
  def race(interrupt:, complete:, &op)
    victim = nil
    machine.spin do
      machine.read(@trigger_r, +"", 1)
      interrupt.call(victim)
    end
    victim = machine.spin(&op)
    machine.sleep(0.001) # both are parked, their ops submitted
    @trigger_w << "!"
    complete.call
    victim
  end

  def stop_with_schedule
    ->(fiber) { machine.schedule(fiber, Stop.new("stop")) }
  end

  def stop_with_raise
    ->(fiber) { fiber.raise(Stop, "stop") }
  end

  def test_a_read_that_completed_returns_its_bytes_and_the_exception_comes_at_the_next_wait
    [stop_with_schedule, stop_with_raise].each do |interrupt|
      r, w = IO.pipe
      buffer = +""
      victim = race(interrupt: interrupt, complete: -> { w << "data" }) do
        n = machine.read(r, buffer, 100)
        begin
          machine.sleep(5)
          [n, :no_exception]
        rescue Stop => e
          [n, e.message]
        end
      end
      assert_equal [4, "stop"], machine.join(victim)
      assert_equal "data", buffer
      assert_equal :wait_readable, r.read_nonblock(10, exception: false), "nothing left behind"
    ensure
      [r, w].each { |io| io&.close }
    end
  end

  def test_the_reproducer_from_the_issue
    r, w = IO.pipe
    f = machine.spin { machine.read(r, +"", 100) rescue $!.class } # rubocop:disable Style/RescueModifier
    machine.snooze
    w.write("data")
    machine.snooze
    machine.schedule(f, RuntimeError.new("stop"))
    assert_equal 4, machine.join(f), "the read's result, not the exception"
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_a_pending_exception_comes_out_of_snooze_and_suspend
    %i[snooze suspend].each do |wait|
      r, w = IO.pipe
      victim = race(interrupt: stop_with_schedule, complete: -> { w << "x" }) do
        machine.read(r, +"", 10)
        machine.public_send(wait)
        :not_reached
      rescue Stop
        :raised
      end
      assert_equal :raised, machine.join(victim), wait.to_s
    ensure
      [r, w].each { |io| io&.close }
    end
  end

  def test_a_fiber_that_finishes_without_waiting_again_drops_the_interrupt
    r, w = IO.pipe
    victim = race(interrupt: stop_with_schedule, complete: -> { w << "abc" }) { machine.read(r, +"", 10) }
    assert_equal 3, machine.join(victim)
    assert_equal 0.001, machine.sleep(0.001), "nothing left pending anywhere"
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_an_accepted_connection_is_returned_not_leaked
    server = TCPServer.new("127.0.0.1", 0)
    port = server.local_address.ip_port
    clients = []
    [stop_with_schedule, stop_with_raise].each do |interrupt|
      victim = race(interrupt: interrupt, complete: -> { clients << TCPSocket.new("127.0.0.1", port) }) do
        fd = machine.accept(server)
        begin
          machine.snooze
        rescue Stop
          fd
        end
      end
      fd = machine.join(victim)
      assert_kind_of Integer, fd
      clients.last << "hi"
      assert_equal 2, machine.read(fd, +"", 10), "the connection is usable"
      machine.close(fd)
    end
  ensure
    clients.each(&:close)
    server&.close
  end

  def test_accept_each_hands_every_accepted_connection_to_the_block
    server = TCPServer.new("127.0.0.1", 0)
    port = server.local_address.ip_port
    clients = []
    [stop_with_schedule, stop_with_raise].each do |interrupt|
      fds = []
      victim = race(interrupt: interrupt, complete: -> { 3.times { clients << TCPSocket.new("127.0.0.1", port) } }) do
        machine.accept_each(server) { |fd| fds << fd }
        :no_exception
      rescue Stop
        :stopped
      end
      assert_equal :stopped, machine.join(victim)
      assert_equal 3, fds.size, "every connection accepted reaches the block"
      fds.each_with_index do |fd, i|
        assert_equal 1, machine.write(fd, i.to_s), "connection #{i} is open"
        machine.close(fd)
      end
    end
  ensure
    clients.each(&:close)
    server&.close
  end

  def test_read_each_yields_every_chunk_that_arrived
    r, w = IO.pipe
    chunks = []
    victim = race(interrupt: stop_with_raise, complete: -> { w << "chunk" }) do
      machine.read_each(r) { |chunk| chunks << chunk }
    rescue Stop
      :stopped
    end
    assert_equal :stopped, machine.join(victim)
    assert_equal "chunk", chunks.join
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_a_timeout_that_fires_as_the_read_completes
    r, w = IO.pipe
    buffer = +""
    f = machine.spin do
      machine.timeout(0.02) { machine.read(r, buffer, 10) }
    end
    machine.sleep(0.001) # the read and the timer are in the kernel
    w << "data"
    sleep 0.1 # the thread, not the machine: the timer fires while the read's completion waits
    assert_equal 4, machine.join(f), "the block returns the read's result, no late timeout"
    assert_equal "data", buffer
    assert_equal 0.001, machine.sleep(0.001), "a timeout of a finished block never fires later"

    g = machine.spin do
      machine.timeout(0.02) do
        machine.read(r, buffer, 10)
        machine.sleep(5)
        :not_reached
      end
    rescue UringMachine::TimeoutError
      :timed_out
    end
    machine.sleep(0.001)
    w << "da"
    sleep 0.1
    assert_equal :timed_out, machine.join(g), "the timeout arrives at the block's next wait"
    assert_equal "da", buffer
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_a_child_failure_that_meets_a_completed_op_moves_on_to_the_grandparent
    r, w = IO.pipe
    got = nil
    outcome = in_fiber do
      parent = machine.spin do
        machine.spin do # fails after the parent's read completed, before the parent runs
          machine.read(@trigger_r, +"", 1)
          raise Stop, "child"
        end
        got = machine.read(r, +"", 10)
        :parent_done
      end
      machine.sleep(0.001)
      @trigger_w << "!"
      w << "x"
      machine.join(parent)
    rescue Stop => e
      e.message
    end
    assert_equal 1, got, "the parent's read kept its result"
    assert_equal "child", outcome, "the failure was not lost when the parent finished"
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_a_break_out_of_accept_each_is_not_spoiled_by_an_interrupt_that_follows
    server = TCPServer.new("127.0.0.1", 0)
    client = nil
    fds = []
    victim = nil
    machine.spin do
      machine.read(@trigger_r, +"", 1)
      victim.raise(Stop, "after the break")
    rescue FiberError
      nil
    end
    victim = machine.spin do
      machine.accept_each(server) do |fd|
        fds << fd
        break
      end
      machine.sleep(5)
      :not_interrupted
    rescue Stop
      :stopped
    end
    machine.sleep(0.001) # both wait in the ring
    client = TCPSocket.new("127.0.0.1", server.local_address.ip_port) # completes first
    @trigger_w << "!"
    assert_equal :stopped, machine.join(victim)
    assert_equal 1, fds.size
    fds.each { |fd| machine.close(fd) }
  ensure
    client&.close
    server&.close
  end
end
