# frozen_string_literal: true

# Loaded into the process that runs CRuby's own IO tests (see io_run.rb), after CRuby's
# test/unit: records each test method's outcome, one "Class#method<TAB>status" line per test, in
# the file UM_IO_RECORD; with UM_IO_SCHEDULED=1, each test method runs in a non-blocking fiber
# under a fresh UringMachine::Scheduler (so every IO call it makes goes through the hooks), the
# scheduler closed (run to its end) before the outcome counts.
require "uring_machine"

module UringMachineIOSuite
  # Runs the test method in a scheduled fiber.
  module InScheduledFiber
    def run_test(name)
      outcome = nil
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      begin
        Fiber.schedule do
          outcome = [:returned, super(name)]
        rescue Exception => e # rubocop:disable Lint/RescueException
          outcome = [:raised, e]
        end
      ensure
        Fiber.set_scheduler(nil)
        tally_fast_io
      end
      raise "the test's fiber never finished" unless outcome
      raise outcome[1] if outcome[0] == :raised

      outcome[1]
    end

    # With UM_IO_FAST_TALLY=path: the IO fast-path calls so far (the thread's machine), so a
    # run can tell how much of CRuby's suite went through them.
    def tally_fast_io
      path = ENV.fetch("UM_IO_FAST_TALLY", nil)
      File.write(path, UringMachine.machine.metrics[:fast_io].to_s) if path
    end
  end

  # Writes down how each test method ended.
  module RecordOutcome
    def run_test(name)
      status = "pass"
      super
    rescue Test::Unit::PendedError
      status = "skip"
      raise
    rescue Test::Unit::AssertionFailedError
      status = "fail"
      raise
    rescue Exception => e # rubocop:disable Lint/RescueException
      status = "error #{e.class}"
      raise
    ensure
      File.open(ENV.fetch("UM_IO_RECORD"), "a") { |f| f.puts "#{self.class}##{name}\t#{status}" }
    end
  end
end

Test::Unit::TestCase.prepend(UringMachineIOSuite::InScheduledFiber) if ENV["UM_IO_SCHEDULED"] == "1"
Test::Unit::TestCase.prepend(UringMachineIOSuite::RecordOutcome) # outermost: sees what the fiber raised
