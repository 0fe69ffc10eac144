# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"
require_relative "gc_compaction_workload"

class TestGC < MachineTest
  # In a fresh process: see gc_compaction_workload.rb.
  def test_in_flight_reads_survive_gc_compact
    lib = File.expand_path("../lib", __dir__)
    workload = File.expand_path("gc_compaction_workload.rb", __dir__)
    output = IO.popen([RbConfig.ruby, "-I", lib, workload], &:read)
    assert_predicate $?, :success?
    assert_equal "abc" * 100, output
  end

  def test_core_ops_under_gc_stress
    GC.stress = true
    received = GCCompactionWorkload.pipe_traffic(machine, 3)
    timed_out = begin
      machine.timeout(0.001) { machine.sleep(1) }
    rescue UringMachine::TimeoutError
      true
    end
    GC.stress = false
    assert_equal "abc" * 12, received
    assert timed_out
  ensure
    GC.stress = false
  end
end
