# frozen_string_literal: true

require "uring_machine"

# Reads in flight on a Machine while another fiber compacts the heap again and again. Run by
# test_gc.rb in a fresh Ruby process. In the full suite's process, Ruby 3.1.2 sometimes aborted
# here with "try to mark T_NONE object" while marking one of the VM's own st tables (called from
# rb_vm_mark, not from our mark function), only after other tests (Digest among them) had run;
# never in a fresh process, never on 3.3 or 3.4. The cause is not pinned down yet.
module GCCompactionWorkload
  module_function

  def run(machine, rounds: 25, compactions: 20)
    GC.auto_compact = true if GC.respond_to?(:auto_compact=)
    compactor = machine.spin { compactions.times { GC.compact; machine.sleep(0.001) } }
    received = pipe_traffic(machine, rounds)
    machine.join(compactor)
    received
  ensure
    GC.auto_compact = false if GC.respond_to?(:auto_compact=)
  end

  def pipe_traffic(machine, rounds)
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
    received = machine.join(*readers)
    machine.join(writer)
    received.join
  ensure
    [r, w].each { |io| io&.close }
  end
end

print GCCompactionWorkload.run(UringMachine::Machine.new) if $PROGRAM_NAME == __FILE__
