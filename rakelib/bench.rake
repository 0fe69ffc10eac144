# frozen_string_literal: true

# rake bench                    compile, then run every workload in benchmark/ (full size)
# rake bench BENCH=pipe         only these workloads (space-separated)
# BENCH_SCALE=0.1 BENCH_RUNS=5  shrink the work / repeat each mode more (see benchmark/harness.rb)
# The sched_* workloads add an Async mode when `require "async"` works (Debian: ruby-async).
# http needs wrk (skipped without it) and adds nginx as the ceiling when installed; its own
# knobs: BENCH_HTTP_SECONDS, BENCH_HTTP_CONNECTIONS (see benchmark/http.rb).
# rack (rake bench BENCH=rack) serves a Rack hello, a bare pg route and a Sinatra + PostgreSQL
# route with our server (1 process; workers: 2; threads: 2), Puma (5 and 32 threads; 1 process,
# 1 and 2 workers) and async-http to wrk with 200 connections, all in one run: req/s, p50/p99,
# CPU per request, the goals; BENCH_RACK_SECONDS, BENCH_RACK_CONNECTIONS, BENCH_RACK_RUBY (see
# benchmark/rack.rb). Needs wrk, puma, ruby-rack, ruby-async-http, postgresql, ruby-sinatra, ruby-sequel.
# sidekiq (rake bench BENCH=sidekiq) works off 10,000 jobs of 10 ms I/O with Sidekiq 6.4 on our
# fibers (concurrency 200 and 50) and on stock threads (10 and 50), all in one run;
# BENCH_SIDEKIQ_JOBS, BENCH_SIDEKIQ_MODES (see benchmark/sidekiq.rb). Needs ruby-sidekiq, redis-server.
# script/bench-chart turns the output into an SVG chart (--workloads rack_hello,rack_pg,rack_sinatra_pg).
desc "Compile, then run the benchmarks in benchmark/ (BENCH=pipe, BENCH_SCALE, BENCH_RUNS)"
task bench: :compile do
  ruby "-w", "benchmark/bench.rb", *ENV.fetch("BENCH", "").split
end
