# frozen_string_literal: true

module UringMachine
  # What the gem changes in Ruby's own IO methods (IO#close waking fibers, the fast paths,
  # coalesced writes) is installed with the first Machine, which a Scheduler makes when it first
  # runs: a program that loads the gem without using it keeps CRuby's methods, at CRuby's speed
  # (with them installed, a plain thread's write + gets on a pipe costs about a quarter more).
  module OnFirstMachine
    @installers = []
    @installed = false

    # Runs the block when the first Machine is made, or at once if one was.
    def self.install(&block)
      @installed ? block.call : @installers << block
    end

    def self.run_installers
      return if @installed

      @installed = true
      @installers.each(&:call)
    end

    def new(...)
      OnFirstMachine.run_installers
      super
    end
  end

  Machine.singleton_class.prepend(OnFirstMachine)
end
