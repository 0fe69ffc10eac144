# frozen_string_literal: true

# Tests of CRuby's own suites (suite_run.rb's SUITES) whose outcome under UringMachine::Scheduler may
# differ from the plain run (see suite_run.rb): name => { Ruby series => reason }.
module ExpectedDifferences
  LIST = {
    "TestIO#test_close_read" => {
      "4.0" => "CRuby 4.0 bug with any scheduler that has fiber_interrupt: after close_read of " \
               "IO.popen(..., 'r+'), IO#write registers its blocking operation on the write IO, " \
               "whose stream close_read swapped for the closed read one, and raises IOError " \
               "before any hook runs (seen with UringMachine.fast_io = false: the fast path " \
               "writes straight to the fd and passes)"
    }
  }.freeze

  # The reason +name+ may differ on this Ruby, or nil.
  def self.reason(name)
    LIST.dig(name, RUBY_VERSION.split(".").first(2).join("."))
  end
end
