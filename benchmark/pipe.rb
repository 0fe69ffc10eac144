# frozen_string_literal: true

# 48 pipe pairs, a writer and a reader per pair, 10,000 writes of 1 KiB per pair (480 MiB),
# moved three ways:
#   machine   one UringMachine::Machine, a writer fiber and a reader fiber per pair
#   threads   two Ruby threads per pair, IO#write / IO#readpartial
#   blocking  no concurrency: one thread, each pair in turn, write 1 KiB then read it back
# One op = one 1 KiB write or one 1 KiB read (nominal: 2 x 480,000), as in DESIGN.md.
# Readers reuse one buffer in every mode (readpartial's outbuf too): a stricter baseline,
# ~15% faster than allocating a String per read.
require "uring_machine"
require_relative "harness"

module PipeBench
  PAIRS = 48
  WRITES = Bench.scaled(10_000)
  CHUNK = ("x" * 1024).freeze
  EXPECTED = WRITES * CHUNK.bytesize
  OPS = 2 * PAIRS * WRITES
  READ_MAX = 65_536

  module_function

  def check(total)
    raise "reader got #{total} bytes, expected #{EXPECTED}" unless total == EXPECTED

    total
  end

  def machine(pairs)
    m = UringMachine.machine
    before = m.metrics
    fibers = pairs.flat_map do |r, w|
      writer = m.spin do
        WRITES.times { m.write(w, CHUNK) }
        w.close
      end
      reader = m.spin do
        buf = +""
        total = 0
        while total < EXPECTED
          n = m.read(r, buf, READ_MAX)
          break if n.zero?

          total += n
        end
        total
      end
      [writer, reader]
    end
    m.join(*fibers).each_slice(2) { |_, total| check(total) }
    Bench.metrics_delta(before, m.metrics)
  end

  def threads(pairs)
    threads = pairs.flat_map do |r, w|
      writer = Thread.new do
        WRITES.times { w.write(CHUNK) }
        w.close
      end
      reader = Thread.new do
        buf = +""
        total = 0
        begin
          total += r.readpartial(READ_MAX, buf).bytesize while total < EXPECTED
        rescue EOFError
          # the writer closed early: check() reports the shortfall
        end
        total
      end
      [writer, reader]
    end
    threads.map(&:value).each_slice(2) { |_, total| check(total) }
    nil
  end

  # The baseline: each pair in turn, a chunk written then read back, by +write+ and +read+
  # (IO#write and IO#readpartial unless given).
  def blocking(pairs, write: ->(w) { w.write(CHUNK) }, read: ->(r, buf) { r.readpartial(CHUNK.bytesize, buf) })
    buf = +""
    pairs.each do |r, w|
      total = 0
      WRITES.times do
        write.call(w)
        total += read.call(r, buf).bytesize
      end
      check(total)
    end
    nil
  end

  def run
    puts "pipe: #{PAIRS} pairs x #{WRITES} writes of #{CHUNK.bytesize} B " \
         "(#{PAIRS * EXPECTED / 1024} KiB, #{OPS} ops), best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    results = Bench.run({ "machine" => method(:machine), "threads" => method(:threads), "blocking" => method(:blocking) },
                        setup: -> { Array.new(PAIRS) { IO.pipe } },
                        teardown: ->(pairs) { pairs.flatten.each { |io| io.close unless io.closed? } })
    Bench.report(results, baseline: "blocking", ops: OPS)
    Bench.report_metrics(results["machine"].value, ops: OPS, mode: "machine")
  end
end

PipeBench.run if $PROGRAM_NAME == __FILE__
