# frozen_string_literal: true

# UringMachine::DNS::Server: a DNS server on the ring, UDP and TCP.

module UringMachine
  module DNS
    # A DNS server on the ring: UDP and TCP on the same port, one fiber per query, the block
    # answering each Transaction (NXDOMAIN unless it responds).
    #
    #   server = UringMachine::DNS::Server.new { |t| t.respond("192.0.2.1") if t.question.type == :A }
    #   server.listen(host: "127.0.0.1", port: 5300)  # returns at once; fibers serve
    #   ...
    #   server.stop
    #
    # #listen binds and starts the serving fibers on the calling thread's Machine (the
    # scheduler's under Fiber.set_scheduler) and returns self; they run whenever that thread's
    # fibers wait. #wait waits for #stop. Under the scheduler they are Fiber.schedule fibers,
    # serving until #stop; with the Machine API they are spun by the fiber that called #listen
    # (listen from a fiber that lives as long as the server, e.g. the thread's root fiber, or
    # #wait in it). Packets that do not decode as a query are dropped
    # and counted (#stats[:malformed]); a block that raises gives SERVFAIL (#stats[:errors],
    # #last_error). A UDP answer larger than 512 bytes goes out truncated (TC) so the client
    # asks again over TCP. Queries pipelined on one TCP connection are answered concurrently
    # too, each answer as soon as it is ready; a connection idle for +tcp_idle_timeout+ seconds
    # is closed.
    class Server
      UDP_LIMIT = 512
      MAX_MESSAGE = 65_535

      class IdleTimeout < Exception; end # rubocop:disable Lint/InheritException

      attr_reader :stats, :last_error, :tcp_idle_timeout

      def initialize(tcp_idle_timeout: 10, &handler)
        raise ArgumentError, "DNS::Server.new needs a block (|transaction| ...)" unless handler
        raise ArgumentError, "tcp_idle_timeout must be a positive number" unless tcp_idle_timeout.is_a?(Numeric) && tcp_idle_timeout.positive?

        @handler = handler
        @tcp_idle_timeout = tcp_idle_timeout
        @stats = { queries: 0, udp: 0, tcp: 0, malformed: 0, errors: 0, truncated: 0 }
        @last_error = nil
        @sockets = []
        @loops = []
        @connections = {}
        @stopping = false
      end

      # Binds UDP and TCP on +host+:+port+ (port 0: a free port, the same for both; see #port)
      # and starts serving. Returns self.
      def listen(host: "127.0.0.1", port: 53, udp: true, tcp: true)
        raise ArgumentError, "already listening" unless @sockets.empty?
        raise ArgumentError, "nothing to listen on (udp: false, tcp: false)" unless udp || tcp

        @machine = DNS.machine
        @stopping = false
        bind(host, port, udp, tcp)
        @udp_socket = @sockets.find { |s| s.is_a?(UDPSocket) }
        @tcp_server = @sockets.find { |s| s.is_a?(TCPServer) }
        @loops << start_fiber { udp_loop(@udp_socket) } if @udp_socket
        @loops << start_fiber { tcp_loop(@tcp_server) } if @tcp_server
        self
      end

      # The port listened on.
      def port
        @sockets.first&.local_address&.ip_port
      end

      def listening?
        !@sockets.empty? && !@stopping
      end

      # Stops listening: closes the sockets and the TCP connections and waits for the serving
      # fibers to leave (answers being made are lost). Idempotent.
      # Call it on the thread that called #listen.
      def stop
        return self if @sockets.empty?

        @stopping = true
        @sockets.each { |s| s.close unless s.closed? }
        @connections.keys.each { |fd| close_connection(fd) }
        loops = @loops
        @loops = []
        loops.each { |f| @machine.join(f) } unless loops.include?(Fiber.current)
        @sockets = []
        self
      end

      # Waits until #stop (from another fiber).
      def wait
        @loops.dup.each { |f| @machine.join(f) }
        self
      end

      private

      # A serving fiber. Under our scheduler a Fiber.schedule fiber, which runs to its end even
      # when the fiber that called listen finishes first; with the Machine API a spun one (on a
      # fiber tree, stopped when the fiber that called listen finishes).
      def start_fiber(&block)
        scheduler = Fiber.scheduler
        return @machine.spin(&block) unless scheduler.is_a?(UringMachine::Scheduler) && scheduler.machine.equal?(@machine)

        Fiber.schedule(&block)
      end

      def bind(host, port, udp, tcp)
        10.times do
          @sockets = []
          begin
            if udp
              sock = UDPSocket.new(DNS.ip_address?(host) && host.include?(":") ? Socket::AF_INET6 : Socket::AF_INET)
              @sockets << sock
              sock.bind(host, port)
            end
            @sockets << TCPServer.new(host, udp && port.zero? ? @sockets.first.local_address.ip_port : port) if tcp
            return
          rescue Errno::EADDRINUSE
            @sockets.each(&:close)
            raise unless udp && tcp && port.zero? # the free UDP port was taken for TCP: another one
          rescue StandardError
            @sockets.each(&:close)
            @sockets = []
            raise
          end
        end
        raise Errno::EADDRINUSE, "no port free for both UDP and TCP on #{host}"
      end

      def udp_loop(sock)
        loop do
          data, sender = receive(sock)
          break unless data

          @machine.spin { answer_udp(sock, data, sender) }
        end
      end

      # [bytes, Addrinfo] of the next datagram, or nil once the socket was closed.
      def receive(sock)
        loop do
          received = sock.recvmsg_nonblock(MAX_MESSAGE, exception: false)
          return received.first(2) unless received == :wait_readable

          @machine.poll(sock, IO::READABLE)
        end
      rescue IOError, Errno::EBADF
        raise unless @stopping || sock.closed?

        nil
      end

      def answer_udp(sock, data, sender)
        reply = answer(data, sender, :udp)
        return unless reply

        if reply.bytesize > UDP_LIMIT
          @stats[:truncated] += 1
          reply = truncate(reply)
        end
        send_datagram(sock, reply, sender)
      end

      def send_datagram(sock, bytes, recipient)
        loop do
          sent = sock.sendmsg_nonblock(bytes, 0, recipient, exception: false)
          return unless sent == :wait_writable

          @machine.poll(sock, IO::WRITABLE)
        end
      rescue IOError, SystemCallError
        nil # stopped meanwhile, or the client's address is unreachable: a lost datagram
      end

      # The header and question only, TC set.
      def truncate(bytes)
        full = Resolv::DNS::Message.decode(bytes)
        short = Resolv::DNS::Message.new(full.id)
        %i[qr opcode aa rd ra rcode].each { |field| short.public_send(:"#{field}=", full.public_send(field)) }
        short.tc = 1
        full.question.each { |name, type| short.add_question(name, type) }
        short.encode
      end

      def tcp_loop(server)
        loop do
          fd = begin
            @machine.accept(server)
          rescue IOError, Errno::EBADF, Errno::EINVAL
            break if @stopping || server.closed?

            raise
          rescue Errno::ECONNABORTED, Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM
            @machine.sleep(0.01) # out of descriptors or memory for a moment: try again
            next
          end
          @connections[fd] = true
          @machine.spin { serve_connection(fd) }
        end
      end

      # Reads the queries of one connection; each is answered by a fiber of its own, answers
      # written whole, in the order they are ready (RFC 7766 allows any order). At EOF the
      # answers still being made are waited for before the connection closes.
      def serve_connection(fd)
        sender = peer_address(fd)
        outbox = { pending: [], writing: false }
        queries = []
        loop do
          length = read_exactly(fd, 2)&.unpack1("n")
          data = length && read_exactly(fd, length)
          break unless data

          query = decode_query(data)
          unless query
            @stats[:malformed] += 1
            break # the stream cannot be trusted any further
          end
          queries.reject! { |f| !f.alive? }
          queries << @machine.spin { answer_tcp(fd, query, sender, outbox) }
        end
      rescue IdleTimeout, IOError, SystemCallError
        nil
      ensure
        queries&.each { |f| @machine.join(f) if f.alive? }
        close_connection(fd)
      end

      def answer_tcp(fd, query, sender, outbox)
        reply = answer_query(query, sender, :tcp)
        outbox[:pending] << ([reply.bytesize].pack("n") + reply)
        return if outbox[:writing] # the fiber writing now takes this answer too

        outbox[:writing] = true
        begin
          @machine.send(fd, outbox[:pending].shift) until outbox[:pending].empty?
        ensure
          outbox[:writing] = false
        end
      rescue IOError, SystemCallError
        nil # the connection was closed meanwhile (stop, or the client left)
      end

      # The Addrinfo of the client at the other end of +fd+ (nil if it is gone already).
      def peer_address(fd)
        socket = Socket.for_fd(fd)
        socket.autoclose = false # the connection's fiber closes the descriptor
        socket.remote_address
      rescue SystemCallError
        nil
      end

      def close_connection(fd)
        @machine.close(fd) if @connections.delete(fd)
      rescue IOError, SystemCallError
        nil
      end

      # +count+ bytes, or nil at EOF.
      def read_exactly(fd, count)
        data = +"".b
        chunk = +""
        while data.bytesize < count
          n = @machine.timeout(@tcp_idle_timeout, IdleTimeout) { @machine.recv(fd, chunk, count - data.bytesize) }
          return nil if n.zero?

          data << chunk
        end
        data
      end

      # The encoded response to +data+, or nil (malformed: dropped, counted).
      def answer(data, sender, protocol)
        query = decode_query(data)
        return answer_query(query, sender, protocol) if query

        @stats[:malformed] += 1
        nil
      end

      def answer_query(query, sender, protocol)
        @stats[:queries] += 1
        @stats[protocol] += 1
        transaction = Transaction.new(query, sender, protocol)
        if query.opcode.zero?
          transaction = run_handler(transaction)
        else
          transaction.rcode = :NOTIMP
        end
        encode(transaction)
      end

      def decode_query(data)
        query = Resolv::DNS::Message.decode(data)
        query.qr.zero? && !query.question.empty? ? query : nil
      rescue StandardError # Resolv::DNS::DecodeError, and what odd bytes provoke inside resolv
        nil
      end

      # The transaction to answer with: the block's, or a SERVFAIL if the block raised.
      def run_handler(transaction)
        @handler.call(transaction)
        transaction
      rescue StandardError => e
        failed(e)
        Transaction.new(transaction.query, transaction.remote_address, transaction.protocol).tap { |t| t.rcode = :SERVFAIL }
      end

      def encode(transaction)
        transaction.response.encode
      rescue StandardError => e # a record the block made that resolv cannot encode
        failed(e)
        fallback = Transaction.new(transaction.query, transaction.remote_address, transaction.protocol)
        fallback.rcode = :SERVFAIL
        fallback.response.encode
      end

      def failed(error)
        @stats[:errors] += 1
        @last_error = error
      end
    end
  end
end
