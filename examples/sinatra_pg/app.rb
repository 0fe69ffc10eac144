# frozen_string_literal: true

# A Sinatra app on UringMachine's Rack server, reaching PostgreSQL two ways: through Sequel with
# its fiber_concurrency extension (each request's fiber gets a pooled connection of its own) and
# through pg directly (a UringMachine::ResourcePool of PG connections). A query that waits lets
# the server's other requests run meanwhile.
#
#   DATABASE_URL=postgres://user@host/db rackup -s uring_machine examples/sinatra_pg/config.ru
#
#   GET /sequel/sleep?seconds=0.01, /pg/sleep?seconds=0.01   SELECT pg_sleep(seconds)
#   GET /sequel/lock/KEY, /pg/lock/KEY   waits for a shared advisory lock on KEY (a transaction
#                                        lock: free again at commit), answers with the backend pid
#   DB_POOL=20   connections per pool (each of Sequel's and pg's)
require "sinatra/base"
require "sequel"
require "pg"
require "uring_machine"

Sequel.extension :fiber_concurrency

# The routes above.
class SinatraPg < Sinatra::Base
  POOL_SIZE = Integer(ENV.fetch("DB_POOL", "20"))
  # test: false: no connection now. One made at load would be inherited by every worker
  # (workers: N forks after loading the app) and shared by them, garbling its replies.
  DB = Sequel.connect(ENV.fetch("DATABASE_URL"), max_connections: POOL_SIZE, test: false)
  PG_POOL = UringMachine::ResourcePool.new(limit: POOL_SIZE) { PG.connect(ENV.fetch("DATABASE_URL")) }

  set :show_exceptions, false

  get "/sequel/sleep" do
    DB.get(Sequel.function(:pg_sleep, Float(params.fetch("seconds", "0.01"))))
    "slept\n"
  end

  get "/pg/sleep" do
    PG_POOL.acquire { |pg| pg.exec_params("SELECT pg_sleep($1)", [Float(params.fetch("seconds", "0.01"))]) }
    "slept\n"
  end

  get "/sequel/lock/:key" do
    DB.transaction do
      DB.get(Sequel.function(:pg_advisory_xact_lock_shared, Integer(params[:key])))
      "sequel #{DB.get(Sequel.function(:pg_backend_pid))}\n"
    end
  end

  get "/pg/lock/:key" do
    PG_POOL.acquire do |pg|
      pg.transaction do
        pg.exec_params("SELECT pg_advisory_xact_lock_shared($1)", [Integer(params[:key])])
        "pg #{pg.exec('SELECT pg_backend_pid()').getvalue(0, 0)}\n"
      end
    end
  end
end
