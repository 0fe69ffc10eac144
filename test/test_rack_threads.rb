# frozen_string_literal: true

require_relative "rack_helper"

# threads: M: M threads of one process accept on the shared listening socket, each under a
# scheduler of its own; a graceful stop lets the requests in flight on every thread finish.
class TestRackThreads < Minitest::Test
  include RackServerHelper

  # At most this many connections are opened to find requests on two threads: the kernel hands
  # each new connection to one thread's pending accept, and both have one pending.
  ATTEMPTS = 200

  # An app whose requests tell the test which thread runs them, then wait for a release.
  def held_app(started, release)
    lambda do |_env|
      started << Thread.current
      [200, { "content-type" => "text/plain" }, ["released by #{release.pop}"]]
    end
  end

  # A server with threads: 2 and connections opened to it, each with a request held in flight,
  # until two threads run them: the server, the sockets, the threads seen (one thread only: the
  # kernel never chose the other), and the Queue that releases the requests.
  def held_requests_on_two_threads
    started = Queue.new
    release = Queue.new
    server = start_server(held_app(started, release), threads: 2)
    sockets = []
    seen = []
    while seen.uniq.size < 2 && sockets.size < ATTEMPTS
      socket = connect(server)
      socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
      sockets << socket
      seen << started.pop
    end
    [server, sockets, seen, release]
  end

  def test_requests_are_served_by_more_than_one_thread
    server, sockets, seen, release = held_requests_on_two_threads
    assert_equal 2, seen.uniq.size, "#{sockets.size} connections, all served by one thread"
    refute_includes seen, Thread.main
    sockets.size.times { release << "the test" }
    sockets.each do |socket|
      assert_equal [200, "released by the test"], read_response(socket).values_at(0, 2)
      socket.close
    end
    assert_equal sockets.size, server.stats[:requests]
  end

  def test_a_graceful_stop_finishes_the_requests_in_flight_on_every_thread
    server, sockets, seen, release = held_requests_on_two_threads
    assert_equal 2, seen.uniq.size
    port = server.port
    server.stop
    2.times { log.wait_for(/stopping/) } # one line per thread
    assert_raises(Errno::ECONNREFUSED) { TCPSocket.new("127.0.0.1", port) }
    sockets.size.times { release << "the stop" }
    sockets.each do |socket|
      status, headers, body = read_response(socket)
      assert_equal [200, "close", "released by the stop"], [status, headers["connection"], body]
      socket.close
    end
  end

  def test_the_env_says_multithread_when_there_are_several_threads
    [[1, false], [3, true]].each do |threads, multithread|
      server = start_server(threads: threads) { |env| [200, {}, [env["rack.multithread"].to_s]] }
      assert_equal multithread.to_s, Net::HTTP.get(URI("http://127.0.0.1:#{server.port}/"))
    end
  end

  def test_bad_thread_counts_are_argument_errors
    [0, -1, 1.5, "2", nil].each do |threads|
      error = assert_raises(ArgumentError) { UringMachine::Rack::Server.new(hello_app, threads: threads) }
      assert_match(/threads must be a positive Integer/, error.message)
    end
  end
end
