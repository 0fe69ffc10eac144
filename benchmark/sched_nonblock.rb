# frozen_string_literal: true

# sched_pipe's workload (48 pipes x 10,000 writes of 1 KiB) in the event-loop style:
# IO#write_nonblock / #read_nonblock with exception: false, and wait_writable / wait_readable
# when they answer :wait_*; reads of 1 KiB, one per write. The machine mode is
# Machine#write/#read on the same pipes.
require "io/wait"
require_relative "sched_pipe"

class SchedNonblock < SchedStreams
  def write_all(io)
    WRITES.times do
      rest = CHUNK
      until rest.empty?
        n = io.write_nonblock(rest, exception: false)
        next io.wait_writable if n == :wait_writable

        rest = rest.byteslice(n..)
      end
    end
    io.close_write
  end

  def read_all(io)
    buf = +""
    total = 0
    while total < EXPECTED
      got = io.read_nonblock(CHUNK.bytesize, buf, exception: false)
      break if got.nil?
      next io.wait_readable if got == :wait_readable

      total += got.bytesize
    end
    check(total)
  end

  def blocking(pairs)
    PipeBench.blocking(pairs, write: ->(w) { w.write_nonblock(CHUNK) },
                              read: ->(r, buf) { r.read_nonblock(CHUNK.bytesize, buf) })
  end
end

SchedNonblock.new("sched_nonblock", machine: true) { IO.pipe }.run if $PROGRAM_NAME == __FILE__
