# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

class TestGC < MachineTest
  def pipe_traffic(rounds)
    r, w = IO.pipe
    readers = Array.new(4) do
      machine.spin do
        received = +""
        rounds.times do
          buffer = +"" # a fresh, small (embedded) String each time
          machine.read(r, buffer, 3)
          received << buffer
        end
        received
      end
    end
    writer = machine.spin do
      (rounds * 4).times do
        machine.sleep(0.0001)
        machine.write(w, "abc")
      end
    end
    [machine.join(*readers), machine.join(writer)]
  ensure
    [r, w].each { |io| io&.close }
  end

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
    received, = pipe_traffic(3)
    timed_out = begin
      machine.timeout(0.001) { machine.sleep(1) }
    rescue UringMachine::TimeoutError
      true
    end
    GC.stress = false
    assert_equal "abc" * 12, received.join
    assert timed_out
  ensure
    GC.stress = false
  end
end
