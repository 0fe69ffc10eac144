# frozen_string_literal: true

# Shared plumbing for the benchmark/*.rb workloads: work scale, repetition, timing, the table.
#
#   BENCH_SCALE=0.1   multiply each workload's iteration counts (default 1)
#   BENCH_RUNS=5      run every mode this many times, round-robin, and keep the best (default 3)
module Bench
  SCALE = Float(ENV.fetch("BENCH_SCALE", "1"))
  RUNS = Integer(ENV.fetch("BENCH_RUNS", "3"))

  # One timed run: wall and CPU seconds (user + system, all threads), and the mode's value.
  Result = Struct.new(:mode, :wall, :cpu, :value)

  module_function

  def scaled(count) = [(count * SCALE).round, 1].max

  def cpu_seconds
    t = Process.times
    t.utime + t.stime
  end

  def measure(mode)
    GC.start
    cpu = cpu_seconds
    wall = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    value = yield
    wall = Process.clock_gettime(Process::CLOCK_MONOTONIC) - wall
    Result.new(mode, wall, cpu_seconds - cpu, value)
  end

  # Runs each mode (name => callable taking a fixture) RUNS times, round-robin, each on a
  # fresh fixture from +setup+ (untimed) that +teardown+ disposes of. Returns the fastest
  # (wall) run of each mode, keyed by name, in the order given.
  def run(modes, setup:, teardown:)
    best = {}
    RUNS.times do
      modes.each do |name, body|
        fixture = setup.call
        begin
          result = measure(name) { body.call(fixture) }
        ensure
          teardown.call(fixture)
        end
        best[name] = result if best[name].nil? || result.wall < best[name].wall
      end
    end
    best
  end

  # The table: one row per mode, with its wall time relative to the +baseline+ mode.
  def report(results, baseline:, ops:)
    base = results.fetch(baseline).wall
    puts format("%-10s %9s %9s %9s %12s %8s", "mode", "wall s", "cpu s", "wall/base", "ops/s", "ns/op")
    results.each_value do |r|
      puts format("%-10s %9.3f %9.3f %9.2f %12.0f %8.0f",
                  r.mode, r.wall, r.cpu, r.wall / base, ops / r.wall, r.wall * 1e9 / ops)
    end
  end
end
