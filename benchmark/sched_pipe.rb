# frozen_string_literal: true

# Fiber::Scheduler workload: 48 pipe pairs x 10,000 writes of 1 KiB through plain Ruby IO calls
# (the writer `w.write(chunk)`, the reader `r.readpartial(65536, buf)` until every byte arrived):
#   scheduler  a writer and a reader fiber per pair on UringMachine::Scheduler
#   async      the same as Async tasks (when the async gem loads)
#   threads    a writer and a reader thread per pair
#   blocking   one thread, each pair in turn, write 1 KiB then read it back (the baseline)
#   machine    benchmark/pipe.rb's Machine mode (m.write / m.read), the floor for the scheduler
# One op = one 1 KiB write or one 1 KiB read, as in pipe.rb.
require "uring_machine"
require_relative "harness"
require_relative "pipe"

# The pipe and socketpair workloads: a stream pair factory is all that differs.
class SchedStreams
  PAIRS = 48
  WRITES = Bench.scaled(10_000)
  CHUNK = ("x" * 1024).freeze
  EXPECTED = WRITES * CHUNK.bytesize
  OPS = 2 * PAIRS * WRITES
  READ_MAX = 65_536

  def initialize(name, machine: false, &pair)
    @name = name
    @machine = machine
    @pair = pair
  end

  def tasks(pairs)
    pairs.flat_map do |r, w|
      [-> { write_all(w) }, -> { read_all(r) }]
    end
  end

  def write_all(io)
    WRITES.times { io.write(CHUNK) }
    io.close_write
  end

  def read_all(io)
    buf = +""
    total = 0
    begin
      total += io.readpartial(READ_MAX, buf).bytesize while total < EXPECTED
    rescue EOFError
      # the writer closed early: check() reports the shortfall
    end
    check(total)
  end

  def check(total)
    raise "#{@name}: reader got #{total} bytes, expected #{EXPECTED}" unless total == EXPECTED

    total
  end

  # The one-thread baseline: write 1 KiB, read it back, pair after pair.
  def blocking(pairs) = PipeBench.blocking(pairs)

  def modes
    modes = Bench.concurrent_modes(method(:tasks), blocking: method(:blocking))
    @machine ? modes.merge("machine" => PipeBench.method(:machine)) : modes
  end

  def run
    puts "#{@name}: #{PAIRS} pairs x #{WRITES} writes of #{CHUNK.bytesize} B " \
         "(#{PAIRS * EXPECTED / 1024} KiB, #{OPS} ops), best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    results = Bench.run(modes, setup: -> { Array.new(PAIRS) { @pair.call } },
                               teardown: ->(pairs) { pairs.flatten.each { |io| io.close unless io.closed? } })
    Bench.report(results, baseline: "blocking", ops: OPS)
    Bench.report_metrics(results["scheduler"].value, ops: OPS)
    return unless @machine

    puts format("scheduler / machine wall: %.2f", results["scheduler"].wall / results["machine"].wall)
  end
end

SchedStreams.new("sched_pipe", machine: true) { IO.pipe }.run if $PROGRAM_NAME == __FILE__
