# frozen_string_literal: true

module CRubyFiberSuite
  # Tests of CRuby's test/fiber that cannot pass with UringMachine::Scheduler, whatever it does,
  # because they test the reference scheduler itself rather than the Fiber::Scheduler interface.
  # They are still run: one that fails is reported with this reason and does not fail the run;
  # one that passes is pointed out, so that it can be removed from here.
  EXPECTED_FAILURES = {
    "TestFiberSleep#test_sleep" =>
      "reads the reference scheduler's private bookkeeping (scheduler.waiting.size, its Hash of sleeping fibers)",
  }.freeze
end
