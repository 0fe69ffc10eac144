# frozen_string_literal: true

# What the interrupted-write tests share: payloads whose every prefix is distinct (so a drained
# stream shows exactly which bytes went out), pipe capacities, and draining without waiting.
module InterruptedWritesHelper
  Stop = Class.new(StandardError)

  F_GETPIPE_SZ = 1032

  # +size+ bytes, no two windows of 8 alike: a skipped or repeated piece cannot go unseen.
  def payload(size)
    Random.new(size).bytes(size)
  end

  def pipe_capacity(io)
    io.fcntl(F_GETPIPE_SZ)
  end

  # Everything +io+ holds now, read without waiting (a plain non-blocking read: no scheduler
  # or machine involved).
  def drain(io)
    out = +"".b
    loop do
      chunk = io.read_nonblock(1 << 16, exception: false)
      break unless chunk.is_a?(String)

      out << chunk
    end
    out
  end

  # The exception leaving a write that was stopped carries the count of what went out, and the
  # reader gets exactly those bytes, in order: nothing skipped, nothing more.
  def assert_stopped_write(exception, sent, drained)
    assert_kind_of UringMachine::PartialWrite, exception, "#{exception.inspect} carries the count"
    assert_operator exception.bytes_written, :>, 0
    assert_operator exception.bytes_written, :<, sent.bytesize, "the write was stopped"
    assert_equal exception.bytes_written, drained.bytesize, "the count is what the reader got"
    assert(sent.byteslice(0, drained.bytesize) == drained, "the reader got a prefix of the data")
  end
end
