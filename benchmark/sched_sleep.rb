# frozen_string_literal: true

# Fiber::Scheduler workload: 10,000 fibers (Async tasks) each `sleep 0.1`, all at once.
# threads: 1,000 threads at a time x 10 rounds (10,000 threads at once is impractical), so
# at best ~1 s. Baseline ("ideal"): 0.1 s, not measured (sequential sleeps would take 1,000 s).
# One op = one sleep.
require "uring_machine"
require_relative "harness"

module SchedSleepBench
  SLEEPERS = Bench.scaled(10_000)
  THREADS = [SLEEPERS, 1_000].min
  PAUSE = 0.1

  module_function

  def tasks(_fixture)
    Array.new(SLEEPERS) { -> { sleep PAUSE } }
  end

  def threads(_fixture)
    SLEEPERS.fdiv(THREADS).ceil.times do |round|
      count = [THREADS, SLEEPERS - round * THREADS].min
      Array.new(count) { Thread.new { sleep PAUSE } }.each(&:join)
    end
    nil
  end

  def run
    puts "sched_sleep: #{SLEEPERS} sleepers x sleep #{PAUSE} (threads: #{THREADS} at a time), " \
         "best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    modes = Bench.concurrent_modes(method(:tasks), blocking: nil).merge("threads" => method(:threads))
    modes.delete("blocking")
    results = Bench.run(modes, setup: -> {}, teardown: ->(_) {})
    results["ideal"] = Bench::Result.new("ideal", PAUSE, 0.0, nil)
    Bench.report(results, baseline: "ideal", ops: SLEEPERS)
    Bench.report_metrics(results["scheduler"].value, ops: SLEEPERS)
  end
end

SchedSleepBench.run if $PROGRAM_NAME == __FILE__
