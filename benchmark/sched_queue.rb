# frozen_string_literal: true

# Fiber::Scheduler workload: one producer pushes 100,000 Integers into a SizedQueue(100), one
# consumer pops them (and sums them, checked). Baseline: one thread pushes 100 then pops 100,
# the same pushes and pops through the same queue. One op = one push or one pop.
require "uring_machine"
require_relative "harness"

module SchedQueueBench
  ITEMS = Bench.scaled(100_000)
  CAPACITY = 100
  OPS = 2 * ITEMS
  SUM = ITEMS * (ITEMS - 1) / 2

  module_function

  def check(sum)
    raise "consumer summed #{sum}, expected #{SUM}" unless sum == SUM

    sum
  end

  def tasks(queue)
    producer = -> { ITEMS.times { |i| queue.push(i) } }
    consumer = -> { check(Array.new(ITEMS) { queue.pop }.sum) }
    [producer, consumer]
  end

  def blocking(queue)
    sum = 0
    0.step(ITEMS - 1, CAPACITY) do |first|
      batch = [CAPACITY, ITEMS - first].min
      batch.times { |i| queue.push(first + i) }
      batch.times { sum += queue.pop }
    end
    check(sum)
  end

  def run
    puts "sched_queue: 1 producer, 1 consumer, #{ITEMS} items through SizedQueue(#{CAPACITY}) " \
         "(#{OPS} ops), best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    results = Bench.run(Bench.concurrent_modes(method(:tasks), blocking: method(:blocking)),
                        setup: -> { SizedQueue.new(CAPACITY) }, teardown: ->(q) { q.close })
    Bench.report(results, baseline: "blocking", ops: OPS)
    Bench.report_metrics(results["scheduler"].value, ops: OPS)
  end
end

SchedQueueBench.run if $PROGRAM_NAME == __FILE__
