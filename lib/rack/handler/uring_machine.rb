# frozen_string_literal: true

# The Rack 2 handler, found by `rackup -s uring_machine` (Rack::Handler.get requires
# rack/handler/uring_machine, then looks the registered name up).

require "rack"
# Rack 3 has no Rack::Handler (the rackup gem's stand-in only warns and forwards): there
# rackup/handler/uring_machine is the handler.
raise LoadError, "Rack #{Rack.release} has no Rack::Handler: rackup/handler/uring_machine serves it" if Rack.release >= "3"

require "rack/handler"
require_relative "../../uring_machine/rack"

module Rack
  module Handler
    UringMachine = ::UringMachine::Rack::Handler
    register :uring_machine, "Rack::Handler::UringMachine" # by name, as Rack 2.2 looks it up
  end
end
