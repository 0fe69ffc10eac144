# frozen_string_literal: true

# Fiber::Scheduler workload, line reading: 48 pipe pairs x 10,000 chunks of 16 lines of 64 B
# (1 KiB) through plain Ruby IO calls (the writer `w.write(chunk)`, the reader `r.gets` until
# EOF); one op = one line read:
#   scheduler  a writer and a reader fiber per pair on UringMachine::Scheduler
#   async      the same as Async tasks (when the async gem loads)
#   threads    a writer and a reader thread per pair
#   blocking   one thread, each pair in turn, write a chunk then gets its 16 lines (the baseline)
#   machine    Machine API: m.write, and m.read of 64 KiB with the lines cut out by hand (no
#              line semantics beyond "\n": a floor, not an equal)
# Compare with URING_MACHINE_FAST_IO=0 for the scheduler without the fast path.
require "uring_machine"
require_relative "harness"

module SchedLines
  PAIRS = 48
  WRITES = Bench.scaled(10_000)
  LINE = "#{'x' * 63}\n".freeze
  PER_CHUNK = 16
  CHUNK = (LINE * PER_CHUNK).freeze
  LINES = WRITES * PER_CHUNK
  OPS = PAIRS * LINES

  module_function

  def check(lines)
    raise "reader got #{lines} lines, expected #{LINES}" unless lines == LINES

    lines
  end

  def tasks(pairs)
    pairs.flat_map do |r, w|
      [
        lambda {
          WRITES.times { w.write(CHUNK) }
          w.close
        },
        lambda {
          lines = 0
          lines += 1 while r.gets
          check(lines)
        }
      ]
    end
  end

  def blocking(pairs)
    pairs.each do |r, w|
      lines = 0
      WRITES.times do
        w.write(CHUNK)
        PER_CHUNK.times { lines += 1 if r.gets }
      end
      check(lines)
    end
  end

  def machine(pairs)
    m = UringMachine.machine
    before = m.metrics
    fibers = pairs.flat_map do |r, w|
      writer = m.spin do
        WRITES.times { m.write(w, CHUNK) }
        w.close
      end
      reader = m.spin { read_lines(m, r) }
      [writer, reader]
    end
    m.join(*fibers).each_slice(2) { |_, lines| check(lines) }
    Bench.metrics_delta(before, m.metrics)
  end

  # Lines read with m.read: each "\n"-ended piece sliced out of the buffer as a new String.
  def read_lines(machine, io)
    buf = +""
    lines = 0
    loop do
      break if machine.read(io, buf, 65_536, -1).zero?

      start = 0
      while (nl = buf.index("\n", start))
        buf.byteslice(start, nl + 1 - start)
        lines += 1
        start = nl + 1
      end
      buf = buf.byteslice(start, buf.bytesize - start)
    end
    lines
  end

  def run
    puts "sched_lines: #{PAIRS} pairs x #{LINES} lines of #{LINE.bytesize} B written #{PER_CHUNK} a chunk " \
         "(#{OPS} lines), best of #{Bench::RUNS}, ruby #{RUBY_VERSION}, fast_io #{UringMachine.fast_io}"
    modes = Bench.concurrent_modes(method(:tasks), blocking: method(:blocking)).merge("machine" => method(:machine))
    results = Bench.run(modes, setup: -> { Array.new(PAIRS) { IO.pipe } },
                               teardown: ->(pairs) { pairs.flatten.each { |io| io.close unless io.closed? } })
    Bench.report(results, baseline: "blocking", ops: OPS)
    Bench.report_metrics(results["scheduler"].value, ops: OPS)
    puts format("scheduler / machine wall: %.2f", results["scheduler"].wall / results["machine"].wall)
  end
end

SchedLines.run if $PROGRAM_NAME == __FILE__
