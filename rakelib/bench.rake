# frozen_string_literal: true

# rake bench                    compile, then run every workload in benchmark/ (full size)
# rake bench BENCH=pipe         only these workloads (space-separated)
# BENCH_SCALE=0.1 BENCH_RUNS=5  shrink the work / repeat each mode more (see benchmark/harness.rb)
# The sched_* workloads add an Async mode when `require "async"` works (Debian: ruby-async).
# http needs wrk (skipped without it) and adds nginx as the ceiling when installed; its own
# knobs: BENCH_HTTP_SECONDS, BENCH_HTTP_CONNECTIONS (see benchmark/http.rb).
# script/bench-chart turns the output into an SVG chart.
desc "Compile, then run the benchmarks in benchmark/ (BENCH=pipe, BENCH_SCALE, BENCH_RUNS)"
task bench: :compile do
  ruby "-w", "benchmark/bench.rb", *ENV.fetch("BENCH", "").split
end
