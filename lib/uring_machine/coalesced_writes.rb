# frozen_string_literal: true

module UringMachine
  # IO#write with several arguments, IO#puts with several lines and IO#print with several
  # pieces are one write, not one per piece, when the current fiber is non-blocking under a
  # UringMachine::Scheduler and the IO writes them unchanged and at once (sync mode, nothing
  # buffered, no encoding conversion): under any fiber scheduler CRuby writes each piece
  # separately, so on TCP the second segment waits for the peer's delayed ACK (~40 ms). The
  # methods (in Rust) fall back to CRuby's own in every other state.
  #
  # Opt out: UringMachine.coalesce_writes = false, or URING_MACHINE_COALESCE_WRITES=0 in the
  # environment when the gem loads.
  self.coalesce_writes = ENV.fetch("URING_MACHINE_COALESCE_WRITES", "1") != "0"
  OnFirstMachine.install { ::IO.prepend(CoalescedWrites) }
end
