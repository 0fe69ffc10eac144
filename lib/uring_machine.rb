# frozen_string_literal: true

# The gem's entry point, `require "uring_machine"`: loads the Rust extension, then each room of
# lib/uring_machine/ (README.md, "Where things are", draws the tree).

require_relative "uring_machine/version"

# The compiled extension lives in one of three places: lib/uring_machine/ after `rake compile`
# or a newer RubyGems install, lib/ after RubyGems 3.3's Cargo builder (Debian's Ruby 3.1).
module UringMachine
  EXTENSION_CANDIDATES = %w[uring_machine/uring_machine.so uring_machine.so].freeze

  def self.load_extension
    EXTENSION_CANDIDATES.each do |relative|
      path = File.expand_path(relative, __dir__)
      return require(path) if File.exist?(path)
    end
    require "uring_machine/uring_machine" # installed elsewhere on $LOAD_PATH (extension dirs)
  end
  private_class_method :load_extension

  load_extension

  # DNS over the ring (lib/uring_machine/dns.rb): loaded by the first Scheduler.new (the
  # scheduler's address_resolve needs it) or on first use, as it requires resolv.
  autoload :DNS, File.expand_path("uring_machine/dns", __dir__)
end

require_relative "uring_machine/fiber_body"
require_relative "uring_machine/machine"
require_relative "uring_machine/timeout_watchdog"
require_relative "uring_machine/scheduler"
require_relative "uring_machine/concurrency"
require_relative "uring_machine/debugger/breakpoint"
# What the gem changes in Ruby's own classes: lib/uring_machine/core_ext/, listed by
# UringMachine.patches.
require_relative "uring_machine/core_ext"
UringMachine::CoreExt.install(:gem_load)
