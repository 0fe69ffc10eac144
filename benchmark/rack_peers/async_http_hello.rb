# frozen_string_literal: true

# benchmark/rack.rb's hello on async-http (0.59, on Async 1.30: Debian's ruby-async-http),
# written for its own API rather than through Rack. One process, one reactor.
#
#   ruby benchmark/rack_peers/async_http_hello.rb PORT
require "async"
require "async/http/server"
require "async/http/endpoint"
require "protocol/http/response"

endpoint = Async::HTTP::Endpoint.parse("http://127.0.0.1:#{Integer(ARGV.fetch(0))}")
server = Async::HTTP::Server.for(endpoint) do |_request|
  Protocol::HTTP::Response[200, { "content-type" => "text/plain" }, ["Hello, world!"]]
end
Async { server.run }
