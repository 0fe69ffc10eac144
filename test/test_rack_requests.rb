# frozen_string_literal: true

require_relative "rack_helper"

# How requests reach the app: keep-alive, pipelining, bodies (Content-Length, chunked, large
# ones in a Tempfile), Expect: 100-continue, HEAD, HTTP/1.0, Connection: close.
class TestRackRequests < Minitest::Test
  include RackServerHelper

  def echo_app
    lambda do |env|
      [200, { "content-type" => "text/plain" }, ["#{env['REQUEST_METHOD']} #{env['PATH_INFO']}?#{env['QUERY_STRING']} #{env['rack.input'].read}"]]
    end
  end

  def test_keep_alive_serves_several_requests_on_one_connection
    server = start_server(hello_app)
    Net::HTTP.start("127.0.0.1", server.port) do |http|
      assert_equal %w[hello\ /a hello\ /b hello\ /c], %w[a b c].map { |path| http.get("/#{path}").body }
    end
    assert_equal 1, server.stats[:connections]
    assert_equal 3, server.stats[:requests]
  end

  def test_pipelined_requests_are_answered_in_order
    server = start_server(echo_app)
    socket = connect(server)
    socket.write("GET /one?x=1 HTTP/1.1\r\nHost: a\r\n\r\n" \
                 "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody" \
                 "GET /three HTTP/1.1\r\nHost: a\r\n\r\n")
    bodies = 3.times.map { read_response(socket)[2] }
    assert_equal ["GET /one?x=1 ", "POST /two? body", "GET /three? "], bodies
  ensure
    socket&.close
  end

  def test_a_chunked_request_body_is_decoded
    server = start_server(echo_app)
    socket = connect(server)
    socket.write("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" \
                 "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert_equal [200, "POST /c? hello world"], read_response(socket).values_at(0, 2)
  ensure
    socket&.close
  end

  # Without Rack::Lint: Rack 3's wrapper of rack.input has no rewind (Rack 3 made it optional).
  def test_a_large_body_goes_to_a_tempfile_and_stays_rewindable
    app = lambda do |env|
      input = env["rack.input"]
      data = input.read
      input.rewind
      [200, { "content-type" => "text/plain" }, ["#{data.bytesize} #{input.read == data} #{input.spooled?}"]]
    end
    server = start_server(app, lint: false, body_in_memory_bytes: 1024)
    Net::HTTP.start("127.0.0.1", server.port) do |http|
      assert_equal "100000 true true", http.post("/", "x" * 100_000, "content-type" => "text/plain").body
      assert_equal "1000 true false", http.post("/", "x" * 1000, "content-type" => "text/plain").body
    end
  end

  def test_expect_100_continue_gets_an_interim_response_before_the_body_is_sent
    server = start_server(echo_app)
    socket = connect(server)
    socket.write("PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert_equal "HTTP/1.1 100 Continue\r\n", socket.gets
    assert_equal "\r\n", socket.gets
    socket.write("abc")
    assert_equal [200, "PUT /up? abc"], read_response(socket).values_at(0, 2)
  ensure
    socket&.close
  end

  def test_head_gets_the_fields_without_the_body
    server = start_server(hello_app)
    socket = connect(server)
    socket.write("HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n")
    status, headers, = read_response(socket, head: true)
    assert_equal [200, "text/plain"], [status, headers["content-type"]]
    assert_equal [200, "hello /g"], read_response(socket).values_at(0, 2) # nothing of /h's body came between
  ensure
    socket&.close
  end

  def test_connection_close_closes_after_the_response
    server = start_server(hello_app)
    socket = connect(server)
    socket.write("GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    status, headers, body = read_response(socket)
    assert_equal [200, "close", "hello /bye"], [status, headers["connection"], body]
    assert_nil socket.read(1)
  ensure
    socket&.close
  end

  def test_http_1_0_closes_unless_keep_alive_is_asked
    server = start_server { |env| [200, { "content-type" => "text/plain", "content-length" => "8" }, ["hello #{env['PATH_INFO']}"]] }
    socket = connect(server)
    socket.write("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    status, headers, body = read_response(socket)
    assert_equal [200, "keep-alive", "hello /k"], [status, headers["connection"], body]
    socket.write("GET /c HTTP/1.0\r\n\r\n")
    assert_equal [200, "hello /c"], read_response(socket).values_at(0, 2)
    assert_nil socket.read(1)
  ensure
    socket&.close
  end

  def test_the_env_follows_the_rack_spec
    envs = Queue.new
    server = start_server { |env| envs << env.dup; [204, {}, []] }
    socket = connect(server)
    socket.write("GET /p/a%20b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\nX-Custom: 1\r\nX-Custom: 2\r\n\r\n")
    assert_equal 204, read_response(socket)[0]
    env = envs.pop
    assert_equal ["GET", "", "/p/a%20b", "q=1", "example.com", "8080", "HTTP/1.1", "1, 2", "127.0.0.1", "http"],
                 env.values_at("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT",
                               "SERVER_PROTOCOL", "HTTP_X_CUSTOM", "REMOTE_ADDR", "rack.url_scheme")
  ensure
    socket&.close
  end
end
