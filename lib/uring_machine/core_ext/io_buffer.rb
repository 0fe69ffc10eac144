# frozen_string_literal: true

# What the gem changes about IO::Buffer (see core_ext.rb for how and when it is installed).

module UringMachine
  # Every Fiber::Scheduler's I/O hooks receive IO::Buffers that CRuby allocates for them, and
  # Ruby 3.x and 4.0 warn once, at the first allocation, that IO::Buffer is experimental: a
  # warning about an interface the program never used. The first scheduler takes that one
  # warning with the experimental category off; other experimental warnings stay as they were.
  module QuietIOBufferWarning
    def self.spend_warning
      was = Warning[:experimental]
      Warning[:experimental] = false
      IO::Buffer.new(1).free
    ensure
      Warning[:experimental] = was unless was.nil?
    end
  end

  CoreExt.declare(
    IO::Buffer, nil, name: "IO::Buffer warning", methods: [], mechanism: :warning,
    at: :first_scheduler, why: "the warning is about buffers CRuby makes for the hooks, not the program's"
  ) { QuietIOBufferWarning.spend_warning }
end
