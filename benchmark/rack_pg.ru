# frozen_string_literal: true

# benchmark/rack.rb's bare PostgreSQL route for every Rack server: GET /?seconds=S runs one
# SELECT pg_sleep(S) through pg directly, on a connection of a pool of DB_POOL (at most DB_POOL
# at once), no framework: the same work as rack_peers/async_http_pg.rb. The pool is
# UringMachine::ResourcePool: fiber-aware under our scheduler, a Mutex and ConditionVariable
# underneath under Puma's threads.
require "pg"
require "uring_machine"

pool = UringMachine::ResourcePool.new(limit: Integer(ENV.fetch("DB_POOL", "20"))) { PG.connect(ENV.fetch("DATABASE_URL")) }
run(lambda do |env|
  seconds = Float(env["QUERY_STRING"][/seconds=([\d.]+)/, 1] || "0.01")
  pool.acquire { |pg| pg.exec_params("SELECT pg_sleep($1)", [seconds]) }
  [200, { "content-type" => "text/plain" }, ["slept\n"]]
end)
