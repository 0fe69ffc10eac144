# frozen_string_literal: true

# Ruby layer workload: 10,000 fibers started, each sleeping 1 ms once (so that all are alive
# at once), then joined. Ours: UringMachine.spin + Fiber#join on the Machine API and under the
# scheduler, plain Fiber.schedule under our scheduler; Async tasks (when installed). Baseline:
# Fiber.schedule. One op = one fiber.
require "uring_machine"
require_relative "harness"

module SpinJoinBench
  FIBERS = Bench.scaled(10_000)

  module_function

  def check(values)
    raise "#{values.size} fibers joined, expected #{FIBERS}" unless values.size == FIBERS && values.all?(:done)

    values
  end

  def modes
    modes = {
      "schedule" => ->(_) { Bench.on_scheduler([-> { Array.new(FIBERS) { Fiber.schedule { sleep 0.001 } } }]) },
      "spin-sched" => lambda do |_|
        Bench.on_scheduler([-> { check(Array.new(FIBERS) { UringMachine.spin { sleep 0.001; :done } }.map(&:join)) }])
      end,
      "spin-machine" => lambda do |_|
        Thread.new do
          machine = UringMachine.machine
          check(Array.new(FIBERS) { UringMachine.spin { machine.sleep(0.001); :done } }.map(&:join))
        end.join
      end
    }
    if Bench.async?
      modes["async"] = lambda do |_|
        Thread.new { Async { |top| check(Array.new(FIBERS) { top.async { sleep 0.001; :done } }.map(&:wait)) } }.join
      end
    else
      puts "async: not installed"
    end
    modes
  end

  def run
    puts "spin_join: #{FIBERS} fibers started, each sleeping 1 ms, then joined, best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    results = Bench.run(modes, setup: -> {}, teardown: ->(_) {})
    Bench.report(results, baseline: "schedule", ops: FIBERS)
  end
end

SpinJoinBench.run if $PROGRAM_NAME == __FILE__
