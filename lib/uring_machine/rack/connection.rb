# frozen_string_literal: true

# One client connection: its requests one after another (keep-alive, pipelining), each read
# within its deadlines, handed to the app, answered; failures answered or logged, never raised
# out of the connection's fiber.

module UringMachine
  module Rack
    # Runs in a fiber of its own (ServingThread#accept_loop starts it).
    class Connection
      # What the response writer needs to know of a request.
      Request = Struct.new(:verb, :minor, :keep_alive) do
        def head? = verb == "HEAD"

        def http10? = minor.zero?
      end

      # A deadline that passed (raised by Machine#timeout into the wait it cuts short). An
      # Exception, not a StandardError, so that nothing between rescues it by accident.
      class Deadline < Exception # rubocop:disable Lint/InheritException
      end
      private_constant :Deadline

      # The fiber serving the connection, set by #run.
      attr_reader :fiber

      def initialize(server, socket)
        @server = server
        @options = server.options
        @socket = socket
        @reader = RequestReader.new(socket, server.parser, @options)
        @writer = ResponseWriter.new(socket)
        @remote_addr = remote_addr(socket)
        @env = Env.new(server.base_env, @remote_addr)
        @idle = Deadline.new("keep-alive timeout")
        @head_deadline = Deadline.new("header timeout")
        @body_deadline = Deadline.new("body timeout")
        @busy = false
        @hijacked = false
      end

      # Serves requests until the client closes, a request asks to close, a deadline passes
      # or the server stops.
      def run
        @fiber = Fiber.current
        @machine = UringMachine.current_machine
        @server.register(self)
        while next_request?
          @busy = true
          break unless serve_request && !@server.stopping?

          @busy = false
        end
      rescue EOFError
        # Between requests that is how a client closes; mid-request it gave up half-way.
        @server.failure(:client_errors, "#{@remote_addr}: closed mid-request") if @busy
      rescue IOError, SystemCallError => e
        # A reset between requests is how some clients close: counted, logged only mid-request.
        @server.failure(:client_errors, "#{@remote_addr}: #{e.class}: #{e.message}", log: @busy)
      ensure
        @server.unregister(self)
        @socket.close unless @hijacked || @socket.closed?
      end

      # Whether a request is being read, run or answered (a graceful stop lets it finish).
      def busy? = @busy

      private

      def remote_addr(socket)
        socket.remote_address.ip_address
      rescue SystemCallError
        "" # already reset by the client: its first read will say so
      end

      # Waits up to keep_alive_timeout for the first byte of a request; false if none came.
      def next_request?
        return true if @reader.buffered?

        @machine.timeout(@options.keep_alive_timeout, @idle) { @reader.fill }
        true
      rescue Deadline, EOFError
        false
      end

      # Reads one request, runs the app and answers; whether the connection goes on.
      def serve_request
        head = read_head or return false
        input = Input.new(@options.body_in_memory_bytes)
        request = Request.new(head[0], head[2], keep_alive?(head))
        read_body(head[3], request, input) or return false
        input.rewind
        respond(@env.build(head, input), request)
      ensure
        input&.close
      end

      def read_head
        @reader.buffered_head || @machine.timeout(@options.header_timeout, @head_deadline) { @reader.read_head }
      rescue Deadline
        refuse(408, "request head not received within #{@options.header_timeout} s", :timeouts)
      rescue HTTP::ParseError => e
        refuse(RequestError.status_of(e), e.message, :bad_requests)
      end

      def keep_alive?(head)
        connection = head[3]["HTTP_CONNECTION"]
        return connection&.match?(/\bkeep-alive\b/i) if head[2].zero?

        !connection&.match?(/\bclose\b/i)
      end

      # Reads the body (answering 100 Continue first if the client waits for it); false when
      # the request was refused.
      def read_body(env, request, input)
        length = body_length(env)
        return true if length&.zero?

        @writer.write_continue if request.minor == 1 && env["HTTP_EXPECT"]&.casecmp?("100-continue")
        if length && @reader.buffered_bytes?(length) # all here: no wait, no deadline
          @reader.read_body(length, input)
        else
          @machine.timeout(@options.body_timeout, @body_deadline) do
            length ? @reader.read_body(length, input) : @reader.read_chunked_body(input)
          end
        end
        true
      rescue Deadline
        refuse(408, "request body not received within #{@options.body_timeout} s", :timeouts)
      rescue RequestError, HTTP::ParseError => e
        refuse(RequestError.status_of(e), e.message, :bad_requests)
      end

      # The body's length, nil for chunked. Refuses both framings at once (a smuggling
      # attempt), codings other than chunked, and lengths that are not one number.
      def body_length(env)
        coding = env["HTTP_TRANSFER_ENCODING"]
        length = env["CONTENT_LENGTH"]
        raise RequestError.new(400, "both Transfer-Encoding and Content-Length") if coding && length
        return 0 unless coding || length
        raise RequestError.new(501, "unsupported Transfer-Encoding: #{coding}") if coding && !coding.casecmp?("chunked")
        return nil if coding
        raise RequestError.new(400, "invalid Content-Length: #{length}") unless length.match?(/\A\d{1,18}\z/)

        length = Integer(length, 10)
        raise RequestError.new(413, "body of #{length} bytes is over the limit") if length > @options.max_body_bytes

        length
      end

      # Answers with an error status and closes; false.
      def refuse(status, message, counter)
        @server.failure(counter, "#{@remote_addr}: #{status} #{message}")
        @writer.write_error(status, message)
        false
      end

      def respond(env, request)
        env["rack.hijack?"] = true
        env["rack.hijack"] = -> { hijack(env) }
        response = call_app(env) or return false
        status, headers, body = response
        if @hijacked # the app took the socket: the response is not ours to write
          body.close if body.respond_to?(:close)
          return false
        end

        request.keep_alive &&= !@server.stopping? # a stop came while the app ran: say so
        writing(body) do
          outcome = @writer.write(request, status, headers, body)
          @hijacked = true if outcome == :hijacked
          outcome == true
        end
      end

      # The app's response, or a 500 for its exception (false: the connection closes).
      def call_app(env)
        @server.count(:requests)
        @server.app.call(env)
      rescue StandardError => e
        @server.failure(:app_errors, "#{env['REQUEST_METHOD']} #{env['REQUEST_URI']}: #{e.class}: #{e.message}", e)
        @writer.write_error(500, "Internal Server Error") unless @hijacked
        false
      end

      # Writes the response; a body that fails half-way can only be cut off (logged).
      def writing(body)
        yield
      rescue StandardError => e
        raise if e.is_a?(SystemCallError) || e.is_a?(IOError)

        @server.failure(:app_errors, "response body failed: #{e.class}: #{e.message}", e)
        false
      ensure
        body.close if body.respond_to?(:close)
      end

      def hijack(env)
        @hijacked = true
        env["rack.hijack_io"] = @socket
      end
    end
  end
end
