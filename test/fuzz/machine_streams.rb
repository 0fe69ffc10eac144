# frozen_string_literal: true

module Fuzz
  # Part "machine_streams": record streams through the Machine API (Machine#write, #writev,
  # #send, #read, #recv) under Machine#timeout, the chaos fiber, closes and a thread that
  # interrupts from outside.
  class MachineStreams < StreamEpisode
    private

    def run_fibers
      machine = UringMachine.machine
      timeouts = Timeouts.new(@rng, @report, machine: machine)
      workers = worker_bodies(machine, MachinePort, timeouts).map do |label, body|
        machine.spin { @report.guard(label, &body) }
      end
      outsider = CrossThread.new(machine, Random.new(@rng.rand(2**32)), @report, workers, until: @deadline)
      chaos = Chaos.new(machine, Random.new(@rng.rand(2**32)), victims: workers, channels: @channels)
      machine.join(machine.spin { @report.guard("chaos") { chaos.run } })
      machine.join(*workers)
      outsider.stop
    end
  end
end
