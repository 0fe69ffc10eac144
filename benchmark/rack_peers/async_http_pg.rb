# frozen_string_literal: true

# benchmark/rack.rb's PostgreSQL route (GET /sequel/sleep?seconds=S: one SELECT pg_sleep(S)) on
# async-http (0.59, on Async 1.30), written for its own API rather than through Rack, with pg
# directly. Async 1.30 sets itself as Ruby's Fiber scheduler, and pg (1.3 and later) waits for
# its socket through IO#wait_readable, so a query suspends only its own task. Connections come
# from a pool of DB_POOL (made as needed, at most DB_POOL at once).
#
#   DATABASE_URL=postgres://... DB_POOL=40 ruby benchmark/rack_peers/async_http_pg.rb PORT
require "async"
require "async/semaphore"
require "async/http/server"
require "async/http/endpoint"
require "protocol/http/response"
require "pg"
require "uri"

url = ENV.fetch("DATABASE_URL")
limit = Async::Semaphore.new(Integer(ENV.fetch("DB_POOL", "20")))
idle = []
endpoint = Async::HTTP::Endpoint.parse("http://127.0.0.1:#{Integer(ARGV.fetch(0))}")
server = Async::HTTP::Server.for(endpoint) do |request|
  seconds = Float(URI.decode_www_form(request.path.partition("?").last).to_h.fetch("seconds", "0.01"))
  limit.acquire do
    pg = idle.pop || PG.connect(url)
    begin
      pg.exec_params("SELECT pg_sleep($1)", [seconds])
    ensure
      idle << pg
    end
  end
  Protocol::HTTP::Response[200, { "content-type" => "text/plain" }, ["slept\n"]]
end
Async { server.run }
