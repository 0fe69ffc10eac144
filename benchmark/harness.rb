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

  # The Fiber::Scheduler workloads: +tasks+ (a fixture => array of callables) run concurrently
  # as fibers on our Scheduler, as Async tasks (when `require "async"` works), as Ruby threads;
  # +blocking+ (a fixture => anything) moves the same bytes/ops through one thread.
  # The scheduler mode's value is its Machine metrics delta; every mode checks its own results.
  def concurrent_modes(tasks, blocking:)
    modes = { "scheduler" => ->(f) { on_scheduler(tasks.call(f)) } }
    if async?
      modes["async"] = ->(f) { on_async(tasks.call(f)) }
    else
      puts "async: not installed"
    end
    modes.merge("threads" => ->(f) { tasks.call(f).map { |t| Thread.new(&t) }.each(&:join) && nil },
                "blocking" => blocking)
  end

  def async?
    return @async unless @async.nil?

    @async = begin
      require "async"
      true
    rescue LoadError
      false
    end
  end

  # In a thread of its own, so the scheduler (and its Machine) ends with the mode.
  def on_scheduler(tasks)
    Thread.new do
      scheduler = UringMachine::Scheduler.new
      Fiber.set_scheduler(scheduler)
      before = scheduler.machine.metrics
      tasks.each { |t| Fiber.schedule(&t) }
      Fiber.set_scheduler(nil) # runs every fiber to its end
      metrics_delta(before, scheduler.machine.metrics)
    end.value
  end

  def on_async(tasks)
    Thread.new { Async { |top| tasks.map { |t| top.async { t.call } }.each(&:wait) }.wait }.join
    nil
  end

  def metrics_delta(before, after)
    counts = %i[ops direct].to_h do |k|
      [k, after[k].to_h { |op, n| [op, n - before[k].fetch(op, 0)] }.reject { |_, n| n.zero? }]
    end
    counts.merge(%i[submits waits switches].to_h { |k| [k, after[k] - before[k]] })
  end

  # The Machine's work per op in the best run of +mode+.
  def report_metrics(delta, ops:, mode: "scheduler")
    ring = delta[:ops].values.sum
    direct = delta[:direct].values.sum
    puts "#{mode} metrics (best run): ring ops #{ring} #{delta[:ops]}, direct #{direct} #{delta[:direct]}"
    puts format("  per op: ring %.3f, direct %.3f, submits %.3f, waits %.3f, switches %.3f",
                *[ring, direct, delta[:submits], delta[:waits], delta[:switches]].map { |n| n.fdiv(ops) })
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
