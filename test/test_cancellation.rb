# frozen_string_literal: true

require_relative "test_helper"

# Every op that can wait: a timeout cancels it, the exception arrives only after the kernel let
# go, and the machine (and the fd) keep working afterwards.
class TestCancellation < MachineTest
  def assert_cancelled(&block)
    in_flight = machine.metrics[:in_flight]
    assert_raises(UringMachine::TimeoutError) { machine.timeout(0.02, &block) }
    assert_equal in_flight, machine.metrics[:in_flight], "the cancelled op is drained"
    assert_equal 0.001, machine.sleep(0.001)
  end

  def test_read_recv_and_poll
    a, b = UNIXSocket.pair
    buffer = +"keep"
    assert_cancelled { machine.read(a, buffer, 10) }
    assert_cancelled { machine.recv(a, buffer, 10) }
    assert_cancelled { machine.poll(a, IO::READABLE) }
    b << "fresh"
    assert_equal "keep", buffer
    assert_equal 5, machine.recv(a, buffer, 10)
  ensure
    [a, b].each { |s| s&.close }
  end

  def test_write_to_a_full_pipe
    r, w = IO.pipe
    w.write_nonblock("x" * 65_536) rescue IO::WaitWritable # fill it
    assert_cancelled { machine.write(w, "y" * 100_000) }
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_accept
    server = TCPServer.new("127.0.0.1", 0)
    assert_cancelled { machine.accept(server) }
    assert_cancelled { machine.accept_each(server) { flunk "nobody connected" } }
    client = TCPSocket.new("127.0.0.1", server.local_address.ip_port)
    fd = machine.accept(server)
    assert_kind_of Integer, fd
    machine.close(fd)
    client.close
  ensure
    server&.close
  end

  def test_read_each
    r, w = IO.pipe
    assert_cancelled { machine.read_each(r) { flunk "no data was written" } }
    w << "after"
    assert_equal "after", r.read_nonblock(10)
  ensure
    [r, w].each { |io| io&.close }
  end

  def test_waitid_and_splice
    pid = Process.spawn("sleep", "5")
    assert_cancelled { machine.waitid(pid) }
    Process.kill(:KILL, pid)
    assert machine.waitid(pid).signaled?
    r, w = IO.pipe
    r2, w2 = IO.pipe
    assert_cancelled { machine.splice(r, w2, 100) }
    w << "spliced later"
    assert_equal 13, machine.splice(r, w2, 100)
    assert_equal "spliced later", r2.read_nonblock(100)
  ensure
    [r, w, r2, w2].each { |io| io&.close }
  end

  def test_sleep_and_suspend
    assert_cancelled { machine.sleep(10) }
    assert_cancelled { machine.suspend }
  end
end
