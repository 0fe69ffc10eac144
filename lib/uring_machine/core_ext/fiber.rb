# frozen_string_literal: true

# What the gem changes in Fiber (see core_ext.rb for how and when it is installed).

module UringMachine
  # Fibers that spin and Fiber.schedule start are switched to with Fiber#transfer, so there is
  # no resumer for a plain Fiber.yield to return to (Ruby would raise FiberError). In such a
  # fiber, Fiber.yield suspends it instead, as the yield to the event loop it means: the other
  # fibers go on, and Machine#schedule(fiber, value) resumes it, Fiber.yield returning value
  # (under a scheduler it is Scheduler#transfer, which run and close do not wait for).
  # Fibers resumed the usual way (Fiber.new { }.resume) yield as always.
  module FiberYieldSuspends
    def yield(*values)
      machine = UringMachine.machine_of(Fiber.current)
      return super unless machine

      scheduler = Fiber.scheduler
      # A scheduler's fiber parks through the scheduler, so that run and close do not wait for it
      if scheduler.is_a?(Scheduler) && scheduler.machine.equal?(machine)
        scheduler.transfer
      else
        machine.suspend
      end
    end
  end

  # The fiber tree, for every fiber: who started whom, and what a parent can do with a child
  # (the tree itself is kept in Rust, machine/tree.rs; UringMachine.spin is in
  # concurrency/spin.rb).
  module FiberTree
    # The fiber that started this one (spin, Fiber.schedule), or that adopted it; nil for others.
    def parent
      UringMachine.parent_of(self)
    end

    # The living fibers this one started or adopted, oldest first.
    def children
      UringMachine.children_of(self)
    end

    # Waits for this fiber to finish and returns its value; re-raises the exception it failed
    # with. Works from any fiber of any thread for a fiber that spin or Fiber.schedule started.
    def join
      ::Kernel.raise ArgumentError, "only a fiber that spin or Fiber.schedule started can be joined" unless UringMachine.machine_of(self)

      UringMachine.current_machine.join(self)
    end
    alias await join

    # Ends this fiber: UringMachine::Stop is raised in it, breaking out of whatever it waits on;
    # its ensure blocks run, and join returns +value+. From any thread. Returns self.
    def stop(value = nil)
      stop = UringMachine::Stop.new("stopped", value)
      ::Kernel.raise stop if equal?(Fiber.current)
      return self unless alive?

      machine = UringMachine.machine_of(self)
      if machine
        machine.schedule(self, stop)
      else
        UringMachine.emit_signal_exception(stop, self) # a thread's main fiber
      end
      self
    end

    # Starts a fiber that runs the same block with the same arguments, under the same parent,
    # after stopping this one if it still runs (waiting for it). Returns the new fiber.
    def restart
      body = UringMachine.__body_of__(self)
      ::Kernel.raise ArgumentError, "only a fiber that spin started can be restarted" unless body
      ::Kernel.raise ArgumentError, "a fiber cannot restart itself" if equal?(Fiber.current)

      if alive?
        stop
        join
      end
      block, args = body
      fiber = UringMachine.spin(*args, name: name, isolated: UringMachine.__isolated__(self), &block)
      UringMachine.__adopt__(parent, fiber, true) if parent
      fiber
    end

    # Makes +fiber+ a child of this fiber: it is stopped when this one finishes, and its failure
    # is raised here. For a thread's main fiber (Thread#main_fiber), this ties the thread's life
    # to this fiber (see Thread#parent_fiber=).
    def add_child_fiber(fiber)
      UringMachine.__adopt__(self, fiber, true)
      self
    end
  end

  # Polyphony's Fiber.await and Fiber.select (UringMachine.await and .select, concurrency/group.rb).
  module FiberAwaitSelect
    # Waits for every fiber: their values in order; the first failure stops the others and is
    # raised.
    def await(*fibers) = UringMachine.await(*fibers)

    # Waits for the first fiber to finish: [fiber, value], or raises its failure.
    def select(*fibers) = UringMachine.select(*fibers)
  end

  # A fiber's mailbox (UringMachine::Mailbox; it, Fiber#<<, UringMachine.receive and
  # .receive_all_pending are in Rust, on the hot path of every message): other fibers, of any
  # thread, send it messages (Fiber#<<), the fiber takes them in order (UringMachine.receive),
  # or the first one a block selects (the others stay, in order). With a limit, a sender to a
  # full mailbox waits until a message is taken, like SizedQueue: only the sending fiber waits,
  # its thread's other fibers go on. receive_all_pending takes everything there is, at once.
  module FiberMailbox
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

  # Fiber names (Ruby has none up to 4.0).
  module FiberNames
    # What spin(name:) or name= called this fiber, or nil.
    def name
      UringMachine.__name_of__(self)
    end

    # Names this fiber (a String or Symbol, kept as a frozen String; nil takes the name away).
    def name=(name)
      UringMachine.__set_name__(self, UringMachine.__fiber_name__(name))
    end
  end

  # An inspect that tells fibers apart: the name, where the fiber's block was written (the spin
  # call, for `spin { }`) and its state.
  module FiberInspect
    # #<Fiber:0x... "name" file.rb:12 (suspended)>: the name when it has one, and, for a fiber
    # that spin or Fiber.schedule started, where its block is (CRuby's inspect shows where
    # Fiber.new was called, the same line of the gem for every one of them).
    def inspect
      text = super
      block = UringMachine.__body_of__(self)&.first
      where = block&.source_location
      text = text.sub(/ \S+:\d+ \(/, " #{where.join(":")} (") if where
      name ? text.sub(/\A(#<Fiber:\S+)/) { "#{$1} #{name.inspect}" } : text
    end
    alias to_s inspect
  end

  CoreExt.declare(
    Fiber, FiberNames, methods: %i[name name=], at: :gem_load, why: "fiber names"
  )
  CoreExt.declare(
    Fiber, FiberInspect, methods: %i[inspect to_s], at: :gem_load,
    why: "inspect shows the fiber's name and where it was spun"
  )
  CoreExt.declare(
    Fiber, FiberYieldSuspends, singleton: true, methods: %i[yield], at: :first_machine,
    why: "in a fiber that spin or Fiber.schedule started (no resumer), Fiber.yield suspends it"
  )
  CoreExt.declare(
    Fiber, FiberTree, methods: %i[parent children join await stop restart add_child_fiber], at: :gem_load,
    why: "the fiber tree: parents, children, join, stop, restart"
  )
  CoreExt.declare(
    Fiber, FiberAwaitSelect, singleton: true, methods: %i[await select], at: :gem_load,
    why: "Polyphony's Fiber.await (all) and Fiber.select (the first to finish)"
  )
  CoreExt.declare(
    Fiber, FiberMailbox, methods: %i[mailbox mailbox_limit mailbox_limit=], at: :gem_load,
    why: "each fiber's mailbox"
  )
  CoreExt.declare(
    Fiber, nil, name: "Fiber#<<", methods: %i[<<], mechanism: :define, at: :gem_load,
    source: "ext/uring_machine/src/lib.rs", why: "sends a message to the fiber's mailbox (hot path, in Rust)"
  )
  CoreExt.declare(
    Fiber, nil, name: "Fiber allocator", methods: [], mechanism: :allocator, at: :gem_load,
    source: "ext/uring_machine/src/machine/fiber_thread.rs",
    why: "records each fiber's thread, so that schedule and unblock refuse another thread's fiber"
  )
end
