# frozen_string_literal: true

# A fiber's mailbox (UringMachine::Mailbox; it, Fiber#<<, UringMachine.receive and
# .receive_all_pending are in Rust, on the hot path of every message): other fibers, of any
# thread, send it messages (Fiber#<<), the fiber takes them in order (UringMachine.receive),
# or the first one a block selects (the others stay, in order). With a limit, a sender to a
# full mailbox waits until a message is taken, like SizedQueue: only the sending fiber waits,
# its thread's other fibers go on. receive_all_pending takes everything there is, at once.
class Fiber
  # This fiber's UringMachine::Mailbox, created on first use.
  def mailbox
    UringMachine.mailbox_of(self)
  end

  # The most messages its mailbox holds before senders wait (nil: no limit, the default).
  def mailbox_limit
    mailbox.limit
  end

  def mailbox_limit=(limit)
    mailbox.limit = limit
  end
end
