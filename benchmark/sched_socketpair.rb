# frozen_string_literal: true

# Fiber::Scheduler workload: sched_pipe.rb's shape (48 pairs x 10,000 writes of 1 KiB, a writer
# and a reader per pair; scheduler / async / threads / blocking / machine) over UNIXSocket.pair.
require "socket"
require_relative "sched_pipe"

SchedStreams.new("sched_socketpair", machine: true) { UNIXSocket.pair }.run if $PROGRAM_NAME == __FILE__
