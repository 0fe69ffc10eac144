# frozen_string_literal: true

module UringMachine
  # Every Fiber::Scheduler's I/O hooks receive IO::Buffers that CRuby allocates for them, and
  # Ruby 3.x and 4.0 warn once, at the first allocation, that IO::Buffer is experimental: a
  # warning about an interface the program never used. The first scheduler takes that one
  # warning with the experimental category off; other experimental warnings stay as they were.
  module QuietIOBufferWarning
    def new(...)
      QuietIOBufferWarning.spend_warning
      super
    end

    def self.spend_warning
      return if @spent

      @spent = true
      was = Warning[:experimental]
      Warning[:experimental] = false
      IO::Buffer.new(1).free
    ensure
      Warning[:experimental] = was unless was.nil?
    end
  end

  Scheduler.singleton_class.prepend(QuietIOBufferWarning)
end
