# frozen_string_literal: true

# The Rack 2 handler, found by `rackup -s uring_machine` (Rack::Handler.get requires
# rack/handler/uring_machine, then looks the registered name up).

require "rack/handler"
require_relative "../../uring_machine/rack"

module Rack
  module Handler
    UringMachine = ::UringMachine::Rack::Handler
    register :uring_machine, "Rack::Handler::UringMachine" # by name, as rack looks it up
  end
end
