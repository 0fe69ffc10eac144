# frozen_string_literal: true

require_relative "test_helper"

# UringMachine::HTTP::Parser (Rust, httparse): request heads into Rack env fields, chunk sizes,
# the limits, and clear exceptions for bad arguments. Needs no rack.
class TestRackHTTPParser < Minitest::Test
  def parser(**limits) = UringMachine::HTTP::Parser.new(**limits)

  def test_a_complete_head_gives_the_request_line_the_env_fields_and_where_it_ends
    buffer = "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nCookie: a=1\r\ncookie: b=2\r\n" \
             "X-Dup: 1\r\nX-Dup: 2\r\nX_Under: dropped\r\n\r\nNEXT"
    method, target, minor, env, finish = parser.parse_request(buffer)
    assert_equal ["GET", "/a?b=1", 1], [method, target, minor]
    assert_equal({ "HTTP_HOST" => "x", "CONTENT_TYPE" => "text/plain", "HTTP_COOKIE" => "a=1; b=2", "HTTP_X_DUP" => "1, 2" }, env)
    assert_equal "NEXT", buffer.byteslice(finish..)
  end

  def test_an_incomplete_head_is_nil_and_an_offset_starts_later
    assert_nil parser.parse_request("GET / HTTP/1.1\r\nHost: x\r\n")
    buffer = "xxxxPOST / HTTP/1.0\r\n\r\n"
    assert_equal ["POST", "/", 0, {}, buffer.bytesize], parser.parse_request(buffer, 4)
  end

  def test_bad_heads_raise_parse_errors_by_kind
    assert_raises(UringMachine::HTTP::ParseError) { parser.parse_request("GET / HTTP/1.1\r\nNo colon\r\n\r\n") }
    assert_raises(UringMachine::HTTP::RequestLineTooLong) { parser(max_request_line: 10).parse_request("GET /0123456789") }
    assert_raises(UringMachine::HTTP::HeadTooLarge) { parser(max_head_bytes: 20).parse_request("GET / HTTP/1.1\r\nA: bbbbbbbbb") }
    assert_raises(UringMachine::HTTP::HeadTooLarge) { parser(max_headers: 1).parse_request("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n") }
    assert_operator UringMachine::HTTP::HeadTooLarge, :<, UringMachine::HTTP::ParseError
  end

  def test_chunk_sizes
    assert_equal [26, 10], parser.parse_chunk_size("1a;ext=1\r\ndata")
    assert_equal [0, 5], parser.parse_chunk_size("xx0\r\n", 2)
    assert_nil parser.parse_chunk_size("1a")
    assert_raises(UringMachine::HTTP::ParseError) { parser.parse_chunk_size("zz\r\n") }
  end

  def test_bad_arguments_are_clear_errors
    assert_raises(TypeError) { parser.parse_request(:not_a_string) }
    assert_raises(ArgumentError) { parser.parse_request("GET", 10) }
    assert_raises(ArgumentError) { parser(max_headers: 0) }
    assert_raises(TypeError) { parser(max_headers: "5") }
    assert_raises(ArgumentError) { parser(no_such: 1) }
    assert_equal [8192, 65_536, 100], [parser.max_request_line, parser.max_head_bytes, parser.max_headers]
  end
end
