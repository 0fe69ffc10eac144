# frozen_string_literal: true

require_relative "test_helper"

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

  def test_in_flight_reads_survive_gc_compact
    GC.auto_compact = true if GC.respond_to?(:auto_compact=)
    compactor = machine.spin { 20.times { GC.compact; machine.sleep(0.001) } }
    received, = pipe_traffic(25)
    machine.join(compactor)
    assert_equal "abc" * 100, received.join
  ensure
    GC.auto_compact = false if GC.respond_to?(:auto_compact=)
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
