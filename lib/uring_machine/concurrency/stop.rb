# frozen_string_literal: true

# UringMachine::Stop, its Ruby half: the exception that ends a fiber on purpose.

module UringMachine
  # Raised in a fiber to end it on purpose (Fiber#stop, its parent finished, the program is
  # ending): its ensure blocks run, and it does not count as a failure. An Exception, not a
  # StandardError, so that a plain `rescue => e` in the fiber does not swallow it.
  class Stop
    # What Fiber#join returns for the fiber it stopped.
    attr_reader :value

    def initialize(message = "stopped", value = nil)
      super(message)
      @value = value
    end
  end

  # What cancel_after raises by default.
  class Cancel < StandardError; end
end
