# frozen_string_literal: true

require_relative "integration_helper"
require_relative "support/http_server"
require "net/http"

# net/http clients in fibers against real HTTP servers on loopback.
class TestIntegrationHTTP < IntegrationTest
  DELAY = 0.2
  CLIENTS = 20

  def test_concurrent_gets_overlap
    server = SlowHTTPServer.new(delay: DELAY)
    got = with_scheduler do
      took = nil
      bodies, ticks = run_with_ticker do
        bodies = nil
        took = elapsed { bodies = in_fibers(CLIENTS) { |i| Net::HTTP.get(URI("http://127.0.0.1:#{server.port}/#{i}")) } }
        bodies
      end
      { bodies: bodies, took: took, ticks: ticks }
    end
    assert_equal CLIENTS.times.map { |i| "hello /#{i}" }, got[:bodies]
    assert_operator got[:took], :<, 2, "#{CLIENTS} GETs of #{DELAY}s each took #{got[:took].round(2)}s: no overlap"
    assert_operator server.most_at_once, :>, 1, "the server never answered two requests at once"
    assert_operator got[:ticks], :>=, 3, "the ticker fiber did not run meanwhile"
  ensure
    server&.stop
  end

  def test_keep_alive_requests_on_one_connection_per_fiber
    server = SlowHTTPServer.new(delay: 0.01)
    bodies, ticks = with_scheduler do
      run_with_ticker do
        in_fibers(5) do |i|
          Net::HTTP.start("127.0.0.1", server.port) { |http| 3.times.map { |j| http.get("/#{i}/#{j}").body } }
        end
      end
    end
    5.times { |i| assert_equal 3.times.map { |j| "hello /#{i}/#{j}" }, bodies[i] }
    assert_operator ticks, :>=, 1
  ensure
    server&.stop
  end

  # WEBrick's accept loop waits in IO.select: in a fiber it must not starve the others (on
  # Ruby 3.1, which has no io_select hook, IO.select is routed to the scheduler).
  def test_webrick_in_a_fiber_serves_clients_in_other_fibers
    require_library("webrick", "ruby-webrick")
    bodies, ticks = with_scheduler do
      server = WEBrick::HTTPServer.new(BindAddress: "127.0.0.1", Port: 0, Logger: WEBrick::Log.new(File::NULL),
                                       AccessLog: [], DoNotReverseLookup: true)
      server.mount_proc("/") { |request, response| response.body = "webrick #{request.path}" }
      port = server.listeners.first.local_address.ip_port
      schedule_fiber { server.start }
      run_with_ticker do
        in_fibers(5) { |i| Net::HTTP.get(URI("http://127.0.0.1:#{port}/#{i}")) }
      ensure
        server.shutdown
      end
    end
    assert_equal 5.times.map { |i| "webrick /#{i}" }, bodies
    assert_operator ticks, :>=, 1, "the ticker fiber did not run while WEBrick waited"
  end
end
