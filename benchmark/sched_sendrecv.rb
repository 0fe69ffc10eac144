# frozen_string_literal: true

# sched_socketpair's workload (48 UNIXSocket pairs x 10,000 messages of 1 KiB) with
# BasicSocket#send and #recv (1 KiB, one per send) in place of write and readpartial; the
# machine mode is Machine#write/#read on the same sockets.
require "socket"
require_relative "sched_pipe"

class SchedSendRecv < SchedStreams
  def write_all(io)
    WRITES.times { io.send(CHUNK, 0) }
    io.close_write
  end

  def read_all(io)
    buf = +""
    total = 0
    while total < EXPECTED
      got = io.recv(CHUNK.bytesize, 0, buf)
      break if got.nil? || got.empty? # EOF: nil since Ruby 3.3, "" before

      total += got.bytesize
    end
    check(total)
  end

  def blocking(pairs)
    PipeBench.blocking(pairs, write: ->(w) { w.send(CHUNK, 0) }, read: ->(r, buf) { r.recv(CHUNK.bytesize, 0, buf) })
  end
end

SchedSendRecv.new("sched_sendrecv", machine: true) { UNIXSocket.pair }.run if $PROGRAM_NAME == __FILE__
