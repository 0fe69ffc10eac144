# frozen_string_literal: true

module Fuzz
  # Part "forks": 1-3 threads, each with a scheduler whose fibers have ops in flight (reads on
  # pipes nobody has written to yet, sleeps), fork from other fibers at random moments
  # (fork + Process.wait); each child does a little ring work and must exit 0. Once the threads
  # have ended, the worker's Resources check finds any fd (rings, eventfds) or thread left
  # behind (issue 18, item 8).
  class Forks
    def initialize(rng, report, _index = nil)
      @rng = rng
      @report = report
    end

    def run
      threads = Array.new(@rng.rand(1..3)) do |i|
        rng = Random.new(@rng.rand(2**32))
        Thread.new { @report.guard("forking thread #{i}") { forking_thread(rng) } }
      end
      threads.each(&:join)
    end

    private

    def forking_thread(rng)
      pipes = Array.new(rng.rand(1..3)) { IO.pipe }
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      pipes.each { |r, _| Fiber.schedule { r.read(1) } } # in flight until the forks are done
      Fiber.schedule { rng.rand(1..4).times { sleep(rng.rand * 0.01) } }
      forkers = Array.new(rng.rand(1..12)) { Fiber.schedule { fork_and_wait(rng.rand * 0.01) } }
      Fiber.schedule do
        sleep(0.001) while forkers.any?(&:alive?)
        pipes.each { |_, w| w.write("!") }
      end
      Fiber.set_scheduler(nil)
    ensure
      pipes.flatten.each(&:close)
    end

    def fork_and_wait(delay)
      sleep(delay)
      pid = fork { UringMachine.machine.sleep(0.001) }
      _, status = Process.wait2(pid)
      @report.count(:forks)
      @report.defect(:fatal, "a forked child ended with #{status.inspect}") unless status.success?
    end
  end
end
