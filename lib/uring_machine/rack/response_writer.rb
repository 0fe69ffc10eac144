# frozen_string_literal: true

# Writes a Rack response: the head, then the body as it comes (Content-Length when the app
# gave it or the body is an Array, else chunked on HTTP/1.1, else until the connection closes),
# nothing of the body for HEAD, 1xx, 204 and 304; partial hijack.

module UringMachine
  module Rack
    # One per connection. #write returns whether the connection can carry another request.
    class ResponseWriter
      CRLF = "\r\n"
      # "HTTP/1.1 200 OK\r\n" by status, made once each; the reason phrases are Rack's when it
      # is loaded (it is under rackup), else empty, which HTTP allows.
      STATUS_LINES = Hash.new do |lines, status|
        lines[status] = "HTTP/1.1 #{status} #{ResponseWriter.reason(status)}\r\n".freeze
      end
      LAST_CHUNK = "0\r\n\r\n"

      def initialize(socket)
        @socket = socket
      end

      # +request+: a Request with its method, protocol and whether it allows keep-alive.
      def write(request, status, headers, body)
        status = Integer(status)
        head, framing, close = head_of(request, status, headers)
        hijack = headers["rack.hijack"]
        keep_alive = request.keep_alive && framing != :close && !hijack && !close
        head << (keep_alive ? keep_alive_field(request) : "connection: close\r\n")
        return partial_hijack(head, hijack) if hijack

        write_body(head, body, request.head? || !body_allowed?(status) ? :none : framing)
        keep_alive
      end

      # A response of the server's own (an error status), closing the connection.
      def write_error(status, message)
        body = "#{message}\n"
        @socket.write(STATUS_LINES[status], "content-type: text/plain\r\n" \
                      "content-length: #{body.bytesize}\r\nconnection: close\r\n\r\n", body)
      end

      # "HTTP/1.1 100 Continue", for a client that waits for it before sending a body.
      def write_continue
        @socket.write("HTTP/1.1 100 Continue\r\n\r\n")
      end

      private

      # The status line and the app's fields, how the body will be framed: :length (the
      # app's Content-Length, or one computed for an Array body), :chunked, :close (HTTP/1.0
      # without a length: the end of the connection ends the body), :app (the app's own
      # Transfer-Encoding) or :none (no body: HEAD, 1xx, 204, 304); and whether the app asked
      # to close the connection.
      def head_of(request, status, headers)
        head = +STATUS_LINES[status]
        framing = close = nil
        headers.each do |name, value|
          next if name.start_with?("rack.")

          case name.downcase
          when "content-length" then framing = :length
          when "transfer-encoding" then framing = :app
          when "connection" then close = value.to_s.casecmp?("close")
          end
          add_field(head, name, value)
        end
        [head, framing || default_framing(request, status), close]
      end

      # Rack 2 joins repeated fields' values with "\n", Rack 3 gives an Array.
      def add_field(head, name, value)
        if value.is_a?(String) && !value.include?("\n")
          head << name << ": " << value << CRLF
        else
          (value.is_a?(Array) ? value : value.to_s.split("\n")).each { |one| head << name << ": " << one << CRLF }
        end
      end

      def default_framing(request, status)
        if request.head? || !body_allowed?(status) then :none
        elsif request.http10? then :close
        else :chunked
        end
      end

      def self.reason(status) = defined?(::Rack::Utils::HTTP_STATUS_CODES) ? ::Rack::Utils::HTTP_STATUS_CODES[status] : ""

      def body_allowed?(status) = status >= 200 && status != 204 && status != 304

      def keep_alive_field(request) = request.http10? ? "connection: keep-alive\r\n" : ""

      def write_body(head, body, framing)
        if framing == :none
          @socket.write(head << CRLF)
        elsif framing == :chunked && body.respond_to?(:to_ary)
          write_array(head, body.to_ary)
        elsif framing == :chunked
          write_chunked(head, body)
        else
          write_raw(head, body)
        end
      end

      # An Array body: its length is known, so one write with a Content-Length.
      def write_array(head, parts)
        length = parts.sum(&:bytesize)
        head << "content-length: " << length.to_s << CRLF << CRLF
        @socket.write(head, *parts)
      end

      def write_chunked(head, body)
        head << "transfer-encoding: chunked\r\n" << CRLF
        @socket.write(head)
        body.each do |part|
          @socket.write(part.bytesize.to_s(16), CRLF, part, CRLF) unless part.empty?
        end
        @socket.write(LAST_CHUNK)
      end

      # The app's framing (Content-Length or its own Transfer-Encoding), or HTTP/1.0's close.
      def write_raw(head, body)
        head << CRLF
        if body.respond_to?(:to_ary)
          @socket.write(head, *body.to_ary)
        else
          @socket.write(head)
          body.each { |part| @socket.write(part) }
        end
      end

      def partial_hijack(head, hijack)
        @socket.write(head << CRLF)
        hijack.call(@socket)
        :hijacked
      end
    end
  end
end
