# frozen_string_literal: true

# What the gem changes in BasicSocket (see core_ext.rb for how and when it is installed).

require "socket"

module UringMachine
  # BasicSocket#recv makes its recv(2) itself, with MSG_DONTWAIT and the GVL held (CRuby's makes
  # it in a GVL-released region), when the current fiber is non-blocking under a
  # UringMachine::Scheduler (UringMachine::FastCalls.recv, in Rust: fast/socket.rs);
  # CRuby's method when it would block, and in every other case. Replaced rather than prepended,
  # for the reason given with IO#read_nonblock in core_ext/io.rb. Switched with
  # UringMachine.fast_io.
  CoreExt.declare(
    BasicSocket, FastCalls, methods: %i[recv], mechanism: :alias, at: :first_scheduler,
    in_place: :while_a_scheduler_is_open,
    switch: "UringMachine.fast_io = false, URING_MACHINE_FAST_IO=0",
    why: "its recv(2) made directly with the GVL held (an alias, not a prepend: super costs too much here)"
  ) do
    CoreExt.keep_cruby(BasicSocket, :recv)
    BasicSocket.class_eval do
      # flags and outbuf nil are what CRuby's recv takes for "none given".
      def recv(maxlen, flags = nil, outbuf = nil)
        result = UringMachine::FastCalls.recv(self, maxlen, flags, outbuf)
        result.equal?(false) ? __cruby_recv(maxlen, flags, outbuf) : result
      end
    end
  end
end
