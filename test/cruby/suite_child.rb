# frozen_string_literal: true

# Loaded into the process that runs CRuby's own tests (see suite_run.rb), after CRuby's
# test/unit: records each test method's outcome, one "Class#method<TAB>status" line per test, in
# the file UM_SUITE_RECORD, and skips the tests already recorded there (a process that replaces
# one killed in a hung test goes on from there); the test it runs is named in UM_SUITE_CURRENT,
# so that a hang can be named. With UM_SUITE_SCHEDULED=1, each test method runs in a non-blocking
# fiber under a fresh UringMachine::Scheduler (so every IO call it makes goes through the hooks),
# the scheduler closed (run to its end) before the outcome counts.
require "uring_machine"

module UringMachineCRubySuite
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

    # With UM_SUITE_FAST_TALLY=path: the IO fast-path calls so far (the thread's machine), so a
    # run can tell how much of CRuby's suite went through them.
    def tally_fast_io
      path = ENV.fetch("UM_SUITE_FAST_TALLY", nil)
      File.write(path, UringMachine.machine.metrics[:fast_io].to_s) if path
    end
  end

  # Writes down how each test method ended.
  module RecordOutcome
    RECORD = ENV.fetch("UM_SUITE_RECORD")
    CURRENT = ENV.fetch("UM_SUITE_CURRENT")
    DONE = File.exist?(RECORD) ? File.readlines(RECORD, chomp: true).to_h { |l| [l.split("\t").first, true] } : {}

    def run_test(name)
      test = "#{self.class}##{name}"
      return if DONE[test]

      File.write(CURRENT, test)
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
      unless DONE[test]
        File.open(RECORD, "a") { |f| f.puts "#{test}\t#{status}" }
        File.write(CURRENT, "")
      end
    end
  end
end

Test::Unit::TestCase.prepend(UringMachineCRubySuite::InScheduledFiber) if ENV["UM_SUITE_SCHEDULED"] == "1"
Test::Unit::TestCase.prepend(UringMachineCRubySuite::RecordOutcome) # outermost: sees what the fiber raised
