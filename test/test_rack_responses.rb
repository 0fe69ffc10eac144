# frozen_string_literal: true

require_relative "rack_helper"

# How responses leave: streamed bodies written as they come (chunked without a length), the
# app's Content-Length kept, 500 for an app's exception, a body failing half-way cut off.
class TestRackResponses < Minitest::Test
  include RackServerHelper

  # A body whose second part is made only after the client has read the first.
  class StreamedBody
    def initialize(gate)
      @gate = gate
    end

    def each
      yield "first;"
      yield @gate.pop
    end
  end

  def test_a_streamed_body_is_written_as_it_comes_in_chunks
    gate = Queue.new
    server = start_server { [200, { "content-type" => "text/plain" }, StreamedBody.new(gate)] }
    socket = connect(server)
    socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    socket.gets("\r\n\r\n")
    assert_equal "6\r\nfirst;\r\n", socket.readpartial(100) # before the second part exists
    gate << "second"
    assert_equal "6\r\nsecond\r\n0\r\n\r\n", socket.read(16)
  ensure
    socket&.close
  end

  def test_the_apps_content_length_frames_a_streamed_body
    gate = Queue.new << "second"
    server = start_server { [200, { "content-type" => "text/plain", "content-length" => "12" }, StreamedBody.new(gate)] }
    socket = connect(server)
    socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    status, headers, body = read_response(socket)
    assert_equal [200, "12", nil, "first;second"], [status, headers["content-length"], headers["transfer-encoding"], body]
  ensure
    socket&.close
  end

  def test_an_app_exception_is_a_500_and_other_requests_go_on
    server = start_server { |env| env["PATH_INFO"] == "/boom" ? raise("kaboom") : [200, { "content-type" => "text/plain" }, ["ok"]] }
    Net::HTTP.start("127.0.0.1", server.port) do |http|
      assert_equal "500", http.get("/boom").code
    end
    assert_match(/kaboom/, log.wait_for(/kaboom/))
    Net::HTTP.start("127.0.0.1", server.port) { |http| assert_equal "ok", http.get("/").body }
    assert_equal 1, server.stats[:app_errors]
  end

  # A body that fails half-way: the response is cut off (the connection closed), logged.
  class FailingBody
    def each
      yield "part"
      raise ArgumentError, "body broke"
    end
  end

  def test_a_body_failing_half_way_closes_the_connection
    server = start_server { [200, { "content-type" => "text/plain" }, FailingBody.new] }
    socket = connect(server)
    socket.write("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    socket.gets("\r\n\r\n")
    assert_equal "4\r\npart\r\n", socket.read(9)
    assert_nil socket.read(1)
    assert_match(/body broke/, log.wait_for(/body broke/))
  ensure
    socket&.close
  end
end
