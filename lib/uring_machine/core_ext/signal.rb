# frozen_string_literal: true

# What the gem changes in Signal and Kernel's trap (see core_ext.rb for how and when it is
# installed).

module UringMachine
  module CoreExt
    # Which signals the program traps with a handler of its own, so that deadlock detection
    # (concurrency/deadlock.rb) knows a signal could still bring a fiber its message. Traps set
    # before the gem was loaded are not seen: a deadlock is then reported all the same.
    module TrapsSeen
      # What leaves a signal without a handler of the program's.
      NO_HANDLER = [nil, "", "DEFAULT", "SIG_DFL", "SYSTEM_DEFAULT", "IGNORE", "SIG_IGN"].freeze

      @trapped = {}

      class << self
        # Whether any signal has a handler of the program's.
        def any?
          !@trapped.empty?
        end

        def record(signal, command)
          key = signal.is_a?(Integer) ? signal : Signal.list.fetch(signal.to_s.delete_prefix("SIG"), signal)
          if command.nil? || NO_HANDLER.include?(command)
            @trapped.delete(key)
          else
            @trapped[key] = true
          end
        end
      end

      def trap(signal, command = nil, &block)
        previous = block ? super(signal, &block) : super(signal, command)
        TrapsSeen.record(signal, block || command)
        previous
      end
    end
  end

  CoreExt.declare(
    Signal, CoreExt::TrapsSeen, singleton: true, methods: %i[trap], at: :gem_load,
    why: "notes which signals the program traps, so that deadlock detection never fires while a trap could still act"
  )
  CoreExt.declare(
    Kernel, CoreExt::TrapsSeen, methods: %i[trap], at: :gem_load,
    why: "the same for Kernel#trap"
  )
end
