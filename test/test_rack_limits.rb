# frozen_string_literal: true

require_relative "rack_helper"

# Bad input gets an answer and costs nothing else: each limit and deadline answers with its
# status and closes that connection, and the server goes on serving the others.
class TestRackLimits < Minitest::Test
  include RackServerHelper

  # Sends +request+ and returns the status of the answer, after checking the connection closed.
  def status_for(server, request)
    socket = connect(server)
    socket.write(request)
    status, _headers, _body = read_response(socket)
    assert_nil socket.read(1), "connection left open"
    status
  ensure
    socket&.close
  end

  def assert_still_serving(server)
    Net::HTTP.start("127.0.0.1", server.port) { |http| assert_equal "hello /", http.get("/").body }
  end

  def test_a_malformed_request_is_a_400
    server = start_server(hello_app)
    assert_equal 400, status_for(server, "GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert_equal 400, status_for(server, "GET / HTTP/3.0\r\n\r\n")
    assert_equal 400, status_for(server, "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n")
    assert_equal 400, status_for(server, "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert_equal 400, status_for(server, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert_equal 501, status_for(server, "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert_equal 6, server.stats[:bad_requests]
    assert_still_serving(server)
  end

  def test_a_long_request_line_is_a_414
    server = start_server(hello_app, max_request_line: 100)
    assert_equal 414, status_for(server, "GET /#{'a' * 200} HTTP/1.1\r\n\r\n")
    assert_equal 414, status_for(server, "GET /#{'a' * 200}") # not even complete
    assert_still_serving(server)
  end

  def test_too_many_or_too_large_header_fields_are_a_431
    server = start_server(hello_app, max_headers: 5, max_head_bytes: 1000)
    assert_equal 431, status_for(server, "GET / HTTP/1.1\r\n#{(1..6).map { |i| "X-#{i}: v\r\n" }.join}\r\n")
    assert_equal 431, status_for(server, "GET / HTTP/1.1\r\nX-Big: #{'v' * 2000}\r\n\r\n")
    assert_still_serving(server)
  end

  def test_a_body_over_the_limit_is_a_413_without_reading_it
    server = start_server(hello_app, max_body_bytes: 100)
    assert_equal 413, status_for(server, "POST / HTTP/1.1\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n")
    assert_equal 413, status_for(server, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n#{'x' * 64}\r\n40\r\n")
    assert_still_serving(server)
  end

  def test_a_head_not_complete_within_header_timeout_is_a_408
    server = start_server(hello_app, header_timeout: 0.05)
    assert_equal 408, status_for(server, "GET / HTTP/1.1\r\nHost: a\r\n")
    assert_equal 1, server.stats[:timeouts]
    assert_still_serving(server)
  end

  # A slowloris client keeps sending a field now and then: the head's deadline is for the
  # whole head, so it is cut off all the same.
  def test_a_client_trickling_its_head_is_cut_off
    server = start_server(hello_app, header_timeout: 0.1)
    socket = connect(server)
    socket.write("GET / HTTP/1.1\r\n")
    socket.write("X-Slow: #{rand(1000)}\r\n") until socket.wait_readable(0.01)
    assert_equal 408, read_response(socket)[0]
  ensure
    socket&.close
  end

  def test_a_body_not_complete_within_body_timeout_is_a_408
    server = start_server(hello_app, body_timeout: 0.05)
    assert_equal 408, status_for(server, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
  end

  def test_an_idle_keep_alive_connection_is_closed_after_keep_alive_timeout
    server = start_server(hello_app, keep_alive_timeout: 0.05)
    socket = connect(server)
    socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert_equal 200, read_response(socket)[0]
    assert_nil socket.read(1) # closed without a word: no request was under way
  ensure
    socket&.close
  end

  def test_a_client_reset_mid_request_is_counted_and_disturbs_nothing_else
    server = start_server(hello_app)
    other = Net::HTTP.start("127.0.0.1", server.port)
    assert_equal "hello /", other.get("/").body
    reset = connect(server)
    reset.write("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\npart")
    reset.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii")) # close sends RST
    reset.close
    assert_match(/ECONNRESET/, log.wait_for(/ECONNRESET/))
    assert_equal 1, server.stats[:client_errors]
    assert_equal "hello /", other.get("/").body # the same keep-alive connection
    assert_still_serving(server)
  ensure
    other&.finish
  end

  def test_bad_options_are_argument_errors
    assert_raises(ArgumentError) { UringMachine::Rack::Server.new(hello_app, header_timeout: 0) }
    assert_raises(ArgumentError) { UringMachine::Rack::Server.new(hello_app, max_headers: "5") }
    assert_raises(ArgumentError) { UringMachine::Rack::Server.new(hello_app, port: 70_000) }
    assert_raises(ArgumentError) { UringMachine::Rack::Server.new(hello_app, no_such_option: 1) }
  end
end
