# frozen_string_literal: true

module UringMachine
  # IO#readpartial, IO#sysread, IO#read(length) and IO#write(string) go straight to the fd
  # (a direct non-blocking syscall; CRuby's method when it would block) when the current fiber
  # is non-blocking under a UringMachine::Scheduler whose class keeps our io_read/io_write
  # (a subclass that overrides them sees every read and write) and the IO is in a state where
  # that is exactly what CRuby's method would do: nothing in its read-ahead or write buffer, no
  # encoding conversion or newline decorator, sync writes without a write lock. The methods
  # (in Rust, scheduler/fast_io.rs) fall back to CRuby's own in every other case. The buffered
  # readers (gets, each_line, readlines, readline, getc, getbyte, eof?, ...) fill the IO's empty
  # read-ahead buffer with a direct read and then run CRuby's method (scheduler/fast_lines.rs).
  #
  # Opt out: UringMachine.fast_io = false, or URING_MACHINE_FAST_IO=0 in the environment when
  # the gem loads.
  self.fast_io = ENV.fetch("URING_MACHINE_FAST_IO", "1") != "0"
  OnFirstMachine.install { ::IO.prepend(FastIO) }
end
