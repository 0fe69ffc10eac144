# frozen_string_literal: true

# Reads requests off a connection: heads through the Rust parser, bodies by Content-Length or
# chunked, keeping bytes that belong to the next (pipelined) request.

module UringMachine
  module Rack
    # One per connection. Reads in pieces of READ_SIZE into a buffer; +@pos+ is where the
    # unread bytes start. Raises EOFError when the client closed, RequestError (or the
    # parser's HTTP::ParseError) for a request to answer with an error status.
    class RequestReader
      READ_SIZE = 16 * 1024
      CRLF = "\r\n"

      def initialize(socket, parser, options)
        @socket = socket
        @parser = parser
        @options = options
        @buffer = String.new(capacity: READ_SIZE, encoding: Encoding::BINARY)
        @chunk = String.new(capacity: READ_SIZE, encoding: Encoding::BINARY)
        @pos = 0
      end

      # Whether bytes of a next request are already here (pipelined).
      def buffered? = @pos < @buffer.bytesize

      # Waits for more bytes from the client (EOFError once it closed).
      def fill
        if @pos == @buffer.bytesize
          @buffer.clear
          @pos = 0
        end
        @buffer << @socket.readpartial(READ_SIZE, @chunk)
      end

      # [method, target, minor_version, env, end] of the next head.
      def read_head
        until (head = buffered_head)
          fill
        end
        head
      end

      # The next head if it is all here already (the usual case: no wait, no deadline), else nil.
      def buffered_head
        head = @parser.parse_request(@buffer, @pos) or return nil
        @pos = head[4]
        head
      end

      # Whether +length+ more bytes are here already.
      def buffered_bytes?(length) = @buffer.bytesize - @pos >= length

      # Reads a body of +length+ bytes into +input+.
      def read_body(length, input)
        raise RequestError.new(413, "body of #{length} bytes is over the limit") if length > @options.max_body_bytes

        while length.positive?
          fill if @pos == @buffer.bytesize
          take = [length, @buffer.bytesize - @pos].min
          input << @buffer.byteslice(@pos, take)
          @pos += take
          length -= take
        end
      end

      # Reads a chunked body into +input+, then its trailer fields (discarded).
      def read_chunked_body(input)
        total = 0
        loop do
          size = chunk_size
          return skip_trailers if size.zero?

          total += size
          raise RequestError.new(413, "chunked body over #{@options.max_body_bytes} bytes") if total > @options.max_body_bytes

          read_body(size, input)
          expect_crlf
        end
      end

      private

      def chunk_size
        until (parsed = @parser.parse_chunk_size(@buffer, @pos))
          fill
        end
        @pos = parsed[1]
        parsed[0]
      end

      def expect_crlf
        fill while @buffer.bytesize - @pos < 2
        raise RequestError.new(400, "chunk data not followed by CRLF") unless @buffer.byteslice(@pos, 2) == CRLF

        @pos += 2
      end

      # The trailer section: lines up to an empty one, which the app never sees (Rack has no
      # place for them), within the head's size limit.
      def skip_trailers
        skipped = 0
        loop do
          until (eol = @buffer.index(CRLF, @pos))
            raise RequestError.new(431, "trailer fields over the limit") if @buffer.bytesize - @pos > @options.max_head_bytes

            fill
          end
          line_length = eol - @pos
          @pos = eol + 2
          return if line_length.zero?

          skipped += line_length + 2
          raise RequestError.new(431, "trailer fields over the limit") if skipped > @options.max_head_bytes
        end
      end
    end
  end
end
