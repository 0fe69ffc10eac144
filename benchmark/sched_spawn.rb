# frozen_string_literal: true

# Fiber::Scheduler workload: 100 children at once, each `Process.spawn("true")` then waited:
#   scheduler  100 fibers, Process.wait(pid) through UringMachine::Scheduler (WAITID on a pidfd)
#   handles    100 fibers, UringMachine::Process.spawn("true").wait (the same, through a handle)
#   async      100 Async tasks, Process.wait(pid) (Async 1.x waits on a thread per child)
#   threads    100 threads, Process.wait(pid)
#   blocking   one thread, spawn then wait, child after child (the baseline)
# Spawning itself (fork + exec) holds the thread in every mode; what differs is the waiting.
# One op = one child spawned and reaped.
require "uring_machine"
require_relative "harness"

module SchedSpawnBench
  CHILDREN = Bench.scaled(100)

  module_function

  def spawn_and_wait
    pid = Process.spawn("true")
    check(Process.wait2(pid)[1])
  end

  def spawn_and_wait_handle
    child = UringMachine::Process.spawn("true")
    check(child.wait)
  ensure
    child&.close
  end

  def check(status)
    raise "child failed: #{status.inspect}" unless status.success?
  end

  def tasks(_fixture)
    Array.new(CHILDREN) { -> { spawn_and_wait } }
  end

  def run
    puts "sched_spawn: #{CHILDREN} children of `true`, spawned and waited at once, " \
         "best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    modes = Bench.concurrent_modes(method(:tasks), blocking: ->(_) { CHILDREN.times { spawn_and_wait } })
    handles = ->(_) { Bench.on_scheduler(Array.new(CHILDREN) { -> { spawn_and_wait_handle } }) }
    modes = { "scheduler" => modes.delete("scheduler"), "handles" => handles }.merge(modes)
    results = Bench.run(modes, setup: -> {}, teardown: ->(_) {})
    Bench.report(results, baseline: "blocking", ops: CHILDREN)
    Bench.report_metrics(results["scheduler"].value, ops: CHILDREN)
  end
end

SchedSpawnBench.run if $PROGRAM_NAME == __FILE__
