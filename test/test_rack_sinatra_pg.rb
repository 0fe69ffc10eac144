# frozen_string_literal: true

require_relative "rack_helper"
require_relative "support/rack_processes"
require_relative "support/postgres_server"
require_relative "integration_helper"

# examples/sinatra_pg under `rackup -s uring_machine -O workers=2`, against a PostgreSQL server
# of the test's own: requests waiting in PostgreSQL (on an advisory lock the test holds) are all
# in flight at once in two single-threaded workers, each on a connection of its own, through
# Sequel's fiber_concurrency and through pg; releasing the lock answers them all.
class TestRackSinatraPg < Minitest::Test
  include RackServerHelper
  include RackProcesses
  include IntegrationTestHelper

  CONFIG_RU = File.expand_path("../examples/sinatra_pg/config.ru", __dir__)
  REQUESTS = 8 # per route
  KEY = 4242

  def setup
    super
    %w[sinatra/base sequel pg].each do |library|
      require library
    rescue LoadError => e
      skip_with_reason("#{library} does not load on Ruby #{RUBY_VERSION} (Debian: ruby-sinatra, ruby-sequel, ruby-pg): #{e.message}")
    end
    @postgres = server(PostgresServer)
  end

  def test_requests_waiting_in_postgresql_are_served_concurrently_each_on_its_own_connection
    rackup = rackup_path
    rackup_loads!
    params = @postgres.params
    url = "postgres://#{params[:user]}@#{params[:host]}:#{params[:port]}/#{params[:dbname]}"
    holder = PG.connect(**params)
    holder.exec("SELECT pg_advisory_lock(#{KEY})")
    command = ChildRuby.command(rackup, "-s", "uring_machine", "-O", "workers=2", "-E", "none", "-o", "127.0.0.1", "-p", "0", CONFIG_RU)
    with_server_process(command: command, env: { "DATABASE_URL" => url }) do |pid, port, _stdin, _stdout, stderr|
      clients = %w[sequel pg].product((1..REQUESTS).to_a).map do |route, _|
        Thread.new { Net::HTTP.get_response(URI("http://127.0.0.1:#{port}/#{route}/lock/#{KEY}")) }
      end
      wait_for_waiters(holder, 2 * REQUESTS)
      holder.exec("SELECT pg_advisory_unlock(#{KEY})")
      responses = clients.map(&:value)
      Process.kill(:TERM, pid)
      assert_equal 0, reap(pid).exitstatus
      assert_equal ["200"], responses.map(&:code).uniq, stderr.read # the server's log says why
      by_route = responses.map(&:body).group_by { |body| body.split.first }
      assert_equal [REQUESTS, REQUESTS], [by_route["sequel"].uniq.size, by_route["pg"].uniq.size], "connections shared"
    end
  ensure
    holder&.close
  end

  # Waits until +count+ sessions wait for the advisory lock (what PostgreSQL shows of them).
  def wait_for_waiters(connection, count)
    LocalServer.wait_until("#{count} requests waiting in PostgreSQL", limit: 30) do
      connection.exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").getvalue(0, 0).to_i == count
    end
  end
end
