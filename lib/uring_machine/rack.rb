# frozen_string_literal: true

# The Rack server, `require "uring_machine/rack"`: UringMachine::Rack::Server (README.md, "Rack
# server"). Each connection is a fiber under UringMachine::Scheduler; HTTP heads are parsed in
# Rust (UringMachine::HTTP::Parser, httparse); the rest is in lib/uring_machine/rack/.

require_relative "../uring_machine"
require_relative "rack/options"
require_relative "rack/errors"
require_relative "rack/stats"
require_relative "rack/input"
require_relative "rack/request_reader"
require_relative "rack/env"
require_relative "rack/response_writer"
require_relative "rack/connection"
require_relative "rack/preload"
require_relative "rack/stop_signals"
require_relative "rack/serving_thread"
require_relative "rack/server"
require_relative "rack/workers"
require_relative "rack/handler"
