# frozen_string_literal: true

require_relative "test_helper"
require_relative "scheduler_helper"
require_relative "half_closed_peer_helper"

# Through the Machine API: a write to a full connection whose peer half-closed waits for the
# reader, and a poll for room waits for room (see half_closed_peer_helper.rb).
class TestHalfClosedPeer < MachineTest
  include HalfClosedPeerHelper

  # Reads everything the writer sent, after a pause: the kernel has answered the write that
  # had to wait by then (a pause only lets a wrong answer show; the right one does not depend
  # on it).
  def read_all(expected = nil)
    machine.sleep(0.05)
    out = +"".b
    buf = +""
    until expected && out.bytesize >= expected
      n = machine.read(@reader, buf, 1 << 16)
      break if n.zero?

      out << buf
    end
    out
  end

  # +write+ in a fiber that then shuts the writing side down, the reader reading to its end in
  # another: [what +write+ returned, what was read after the queued bytes].
  def write_and_read(&write)
    writer = machine.spin do
      write.call
    ensure
      @writer.close_write
    end
    reader = machine.spin { read_all }
    written, got = machine.join(writer, reader)
    [written, got.byteslice(@queued..)]
  end

  def test_write_writes_everything
    data = payload(1 << 20)
    assert_equal [data.bytesize, data], write_and_read { machine.write(@writer, data) }
  end

  def test_writev_writes_everything
    data = payload(1 << 20)
    cut = 12_345
    assert_equal [data.bytesize, data],
                 write_and_read { machine.writev(@writer, data.byteslice(0, cut), data.byteslice(cut..)) }
  end

  def test_poll_for_room_waits_for_room
    poller = machine.spin { machine.poll(@writer, IO::WRITABLE) }
    # Submits the poll and reaps what the kernel answers at once (a ready poll completes as it
    # is submitted).
    machine.sleep(0.001)
    assert_predicate poller, :alive?, "no room yet: the poll waits"
    reader = machine.spin { read_all(@queued) }
    events, = machine.join(poller, reader)
    assert_equal IO::WRITABLE, events & IO::WRITABLE
  end
end

# Under the scheduler: IO#write, IO#wait_writable and IO.select on such a connection behave as
# they do without it.
class TestSchedulerHalfClosedPeer < Minitest::Test
  include SchedulerTestHelper
  include HalfClosedPeerHelper

  # IO#write(*pieces) in one fiber, the reader reading to its end in another, once the write
  # waits (see read_all above): [what the write returned, what was read after the queued bytes].
  def write_and_read(*pieces)
    written, got = with_scheduler do
      result = []
      schedule_fiber do
        result[0] = @writer.write(*pieces)
      ensure
        @writer.close_write
      end
      schedule_fiber do
        sleep(0.05)
        result[1] = @reader.read
      end
      Fiber.set_scheduler(nil)
      result
    end
    [written, got.byteslice(@queued..)]
  end

  def test_io_write_writes_everything
    data = payload(1 << 20)
    assert_equal [data.bytesize, data], write_and_read(data)
  end

  def test_io_write_of_pieces_writes_everything
    data = payload(1 << 20)
    assert_equal [data.bytesize, data], write_and_read(data.byteslice(0, 777), data.byteslice(777..))
  end

  def test_wait_writable_waits_until_its_timeout
    waited, took = in_scheduled_fiber do
      start = monotonic
      [@writer.wait_writable(0.1), monotonic - start]
    end
    assert_nil waited, "no room came: the wait times out"
    assert_operator took, :>=, 0.1
  end

  def test_wait_writable_without_timeout_waits_for_room
    ready = with_scheduler do
      result = nil
      schedule_fiber { result = @writer.wait_writable }
      schedule_fiber { @reader.read(@queued) }
      Fiber.set_scheduler(nil)
      result
    end
    assert_same @writer, ready
  end

  def test_select_for_room_waits_until_its_timeout
    selected, took = in_scheduled_fiber do
      start = monotonic
      [IO.select(nil, [@writer], nil, 0.1), monotonic - start]
    end
    assert_nil selected
    assert_operator took, :>=, 0.1
  end
end
