# frozen_string_literal: true

# Structured concurrency, its Ruby half: which machine a fiber runs on, spin and the fiber
# tree, isolated fibers, Stop, cancel_after / move_on_after, supervise, worker threads. The tree itself, the
# mailboxes (Fiber#<<, receive) and the timeouts are kept in Rust
# (ext/uring_machine/src/machine/); Fiber's and Thread's methods are in core_ext/.
require_relative "concurrency/stop"
require_relative "concurrency/current"
require_relative "concurrency/spin"
require_relative "concurrency/isolation"
require_relative "concurrency/cancellation"
require_relative "concurrency/supervisor"
require_relative "concurrency/threads"
require_relative "concurrency/run"
require_relative "concurrency/group"
require_relative "concurrency/semaphore"
require_relative "concurrency/resource_pool"
require_relative "concurrency/timers"
require_relative "concurrency/wait_description"
require_relative "concurrency/tree_printer"
require_relative "concurrency/deadlock"
