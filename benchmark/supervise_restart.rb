# frozen_string_literal: true

# Ruby layer workload: a restart storm. One supervised fiber fails at once, 10,000 times, each
# time restarted by supervise(restart: :on_error) until its restart limit ends the storm.
# Against the same number of fibers spun, failing and joined by hand (rescuing each failure).
# One op = one failed run. Machine API.
require "uring_machine"
require_relative "harness"

module SuperviseRestartBench
  RUNS = Bench.scaled(10_000)

  module_function

  def supervised
    count = 0
    UringMachine.spin do
      count += 1
      raise "fails"
    end
    UringMachine.supervise(restart: :on_error, max_restarts: RUNS - 1, within: 3600)
  rescue UringMachine::RestartLimitError
    raise "#{count} runs, expected #{RUNS}" unless count == RUNS

    count
  end

  def by_hand
    RUNS.times do
      UringMachine.spin { raise "fails" }.join
    rescue RuntimeError
      nil
    end
  end

  def on_machine(&block)
    Thread.new { machine = UringMachine.machine; machine.join(machine.spin(&block)) }.value
  end

  def run
    puts "supervise_restart: #{RUNS} failures of one fiber, restarted by supervise, best of #{Bench::RUNS}, " \
         "ruby #{RUBY_VERSION}"
    modes = { "by-hand" => ->(_) { on_machine { by_hand } }, "supervise" => ->(_) { on_machine { supervised } } }
    results = Bench.run(modes, setup: -> {}, teardown: ->(_) {})
    Bench.report(results, baseline: "by-hand", ops: RUNS)
  end
end

SuperviseRestartBench.run if $PROGRAM_NAME == __FILE__
