# frozen_string_literal: true

# The rackup gem's handler (Rack 3), found by `rackup -s uring_machine` (Rackup::Handler.get
# requires rackup/handler/uring_machine, then looks the registered name up).

require "rackup/handler"
require_relative "../../uring_machine/rack"

module Rackup
  module Handler
    UringMachine = ::UringMachine::Rack::Handler
    register :uring_machine, UringMachine # rackup 2.x keeps the module itself
  end
end
