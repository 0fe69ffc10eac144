# frozen_string_literal: true

require_relative "integration_helper"
require_relative "support/postgres_server"

# ruby-pg against a PostgreSQL server of our own: libpq's asynchronous API waits in io_wait, so
# queries of many fibers (one connection each) overlap.
class TestIntegrationPg < IntegrationTest
  CLIENTS = 20
  SLEEP = 0.2

  def setup
    super
    require_library("pg", "ruby-pg", note: "its extension is built for Debian's default Ruby only")
    @server = server(PostgresServer)
  end

  def test_sleeping_queries_of_many_fibers_overlap
    (values, took), ticks = with_scheduler do
      run_with_ticker do
        values = nil
        took = elapsed do
          values = in_fibers(CLIENTS) do |i|
            connection = PG.connect(**@server.params)
            begin
              connection.async_exec_params("SELECT pg_sleep($1), $2::int AS i", [SLEEP, i]).getvalue(0, 1).to_i
            ensure
              connection.close
            end
          end
        end
        [values, took]
      end
    end
    assert_equal (0...CLIENTS).to_a, values
    assert_operator took, :<, 2, "#{CLIENTS} queries of pg_sleep(#{SLEEP}) took #{took.round(2)}s: no overlap"
    assert_operator ticks, :>=, 3, "the ticker fiber did not run meanwhile"
  end

  def test_notifications_reach_a_waiting_fiber
    payloads, ticks = with_scheduler do
      run_with_ticker do
        listener = PG.connect(**@server.params)
        notifier = PG.connect(**@server.params)
        listener.async_exec("LISTEN um_test")
        notified = Thread::Queue.new
        Fiber.schedule do
          3.times do |i|
            sleep 0.02 # the listener waits meanwhile
            notifier.async_exec("NOTIFY um_test, 'message #{i}'")
          end
        ensure
          notified << true
        end
        payloads = []
        3.times { listener.wait_for_notify(5) { |_channel, _pid, payload| payloads << payload } }
        notified.pop # a NOTIFY reaches the listener before its own command completes
        listener.close
        notifier.close
        payloads
      end
    end
    assert_equal ["message 0", "message 1", "message 2"], payloads
    assert_operator ticks, :>=, 1, "the ticker fiber did not run while the listener waited"
  end

  def test_an_error_in_one_fiber_leaves_the_others_alone
    results, = with_scheduler do
      run_with_ticker do
        in_fibers(3) do |i|
          connection = PG.connect(**@server.params)
          begin
            next connection.async_exec("SELECT 1 / 0").to_a if i == 1

            connection.async_exec("SELECT pg_sleep(0.05), #{i} AS i").getvalue(0, 1)
          rescue PG::DivisionByZero => e
            e.class
          ensure
            connection.close
          end
        end
      end
    end
    assert_equal ["0", PG::DivisionByZero, "2"], results
  end
end
