# frozen_string_literal: true

# UringMachine::DNS::Server: a DNS server on the ring, UDP and TCP.

module UringMachine
  module DNS
    # A DNS server on the ring: UDP and TCP on the same port, the block answering each
    # Transaction (NXDOMAIN unless it responds), each query in a fiber of its own.
    #
    #   server = UringMachine::DNS::Server.new { |t| t.respond("192.0.2.1") if t.question.type == :A }
    #   server.listen(host: "127.0.0.1", port: 5300)  # returns at once; fibers serve
    #   ...
    #   server.stop
    #
    # #listen binds and starts the serving fibers on the calling thread's Machine (the
    # scheduler's under Fiber.set_scheduler) and returns self; they run whenever that thread's
    # fibers wait. #wait waits for #stop. Under the scheduler they are Fiber.schedule fibers,
    # serving until #stop; with the Machine API they are spun as children of the fiber that
    # called #listen (listen from a fiber that lives as long as the server, e.g. the thread's
    # root fiber, or #wait in it).
    #
    # UDP queries are answered by a few worker fibers that take turns receiving: the one that
    # takes a datagram runs the block and, when no other is left receiving (its block waits,
    # say), spins one more first, so that a waiting block holds up only its own query; workers
    # beyond SPARE_WORKERS leave once they have answered. The datagrams, their questions and
    # the replies with only address records go through Rust (Machine#__dns_receive__ and
    # #__dns_reply_to__, UringMachine.__dns_transaction__ and .__dns_reply__); resolv decodes
    # and encodes the rest (Transaction#query, other records, odd packets). Queries pipelined
    # on one TCP connection are answered concurrently too, each answer as soon as it is ready;
    # a connection idle for +tcp_idle_timeout+ seconds is closed.
    #
    # Packets that do not decode as a query are dropped and counted (#stats[:malformed]); a
    # block that raises gives SERVFAIL (#stats[:errors], #last_error). A UDP answer larger than
    # 512 bytes goes out truncated (TC) so the client asks again over TCP.
    class Server
      UDP_LIMIT = 512
      MAX_MESSAGE = 65_535
      # UDP workers waiting for a datagram beyond which one that has answered leaves.
      SPARE_WORKERS = 2
      # Queries a UDP worker answers in a row (while datagrams keep coming) before it lets the
      # thread's other fibers run.
      BATCH = 64
      # The TC bit, in the third byte of the header.
      TC_BIT = 0x02

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
        @tcp_loop = nil
        @receiving = {} # the UDP workers waiting for a datagram
        @starting = 0 # UDP workers spun that have not begun to wait yet
        @connections = {}
        @stopping = false
      end

      # Binds UDP and TCP on +host+:+port+ (port 0: a free port, the same for both; see #port)
      # and starts serving. Returns self.
      def listen(host: "127.0.0.1", port: 53, udp: true, tcp: true)
        raise ArgumentError, "already listening" unless @sockets.empty?
        raise ArgumentError, "nothing to listen on (udp: false, tcp: false)" unless udp || tcp

        @machine = DNS.machine
        @home = Fiber.current
        @stopping = false
        @receiving = {}
        @starting = 0
        bind(host, port, udp, tcp)
        @udp_socket = @sockets.find { |s| s.is_a?(UDPSocket) }
        @tcp_server = @sockets.find { |s| s.is_a?(TCPServer) }
        start_udp_worker(@udp_socket) if @udp_socket
        @tcp_loop = start_fiber { tcp_loop(@tcp_server) } if @tcp_server
        self
      end

      # The port listened on.
      def port
        @sockets.first&.local_address&.ip_port
      end

      def listening?
        !@sockets.empty? && !@stopping
      end

      # Stops listening: closes the sockets and the TCP connections and waits for the fibers
      # that receive and accept to leave (answers being made are lost). Idempotent.
      # Call it on the thread that called #listen.
      def stop
        return self if @sockets.empty?

        @stopping = true
        @sockets.each { |s| s.close unless s.closed? }
        @connections.keys.each { |fd| close_connection(fd) }
        serving = serving_fibers - [Fiber.current]
        @machine.join(*serving) unless serving.empty?
        @tcp_loop = nil
        @sockets = []
        self
      end

      # Waits until #stop (from another fiber).
      def wait
        until @stopping || (serving = serving_fibers).empty?
          @machine.join(*serving) # until they leave: at #stop, or a UDP worker beyond the spares
        end
        self
      end

      private

      # A serving fiber. Under our scheduler a Fiber.schedule fiber, which runs to its end even
      # when the fiber that called listen finishes first; with the Machine API a spun one, a
      # child of the fiber that called listen whichever fiber spins it (stopped when that one
      # finishes).
      def start_fiber(&block)
        scheduler = Fiber.scheduler
        return Fiber.schedule(&block) if scheduler.is_a?(UringMachine::Scheduler) && scheduler.machine.equal?(@machine)

        fiber = @machine.spin(&block)
        UringMachine.__adopt__(@home, fiber, true) unless @home.equal?(Fiber.current)
        fiber
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

      # The fibers #stop and #wait wait for: the UDP workers waiting for a datagram, and the
      # TCP accept loop.
      def serving_fibers
        @tcp_loop ? [*@receiving.keys, @tcp_loop] : @receiving.keys
      end

      # A new UDP worker, counted as receiving from now on (see udp_worker).
      def start_udp_worker(sock)
        @starting += 1
        start_fiber { udp_worker(sock) }
      end

      # Receives a datagram and answers it, over and over. One that takes a datagram when no
      # other worker is waiting for one spins a new worker before it answers (its block may
      # wait); one that has answered leaves if SPARE_WORKERS others are waiting already.
      def udp_worker(sock)
        # Fiber.schedule runs a new fiber at once: let the worker that spun this one answer
        # its query first, or each new worker could take a datagram and spin yet another.
        @machine.snooze
        @starting -= 1 if sock.equal?(@udp_socket) # not a worker of a listen before #stop
        me = Fiber.current
        answered = 0
        loop do
          @receiving[me] = true
          received = begin
            @machine.snooze if (answered += 1) % BATCH == 0 # counted as receiving meanwhile
            receive(sock)
          ensure
            @receiving.delete(me)
          end
          break unless received

          start_udp_worker(sock) if @receiving.empty? && @starting.zero?
          if received.is_a?(Transaction)
            answer_udp(sock, received)
          else
            answer_decoded_udp(sock, *received)
          end
          break if @receiving.size + @starting >= SPARE_WORKERS
        end
      end

      # The next datagram: a Transaction (a query Rust read), [packet, packed sockaddr]
      # (anything else), or nil once the socket was closed.
      def receive(sock)
        @machine.__dns_receive__(sock, Transaction)
      rescue IOError, Errno::EBADF
        raise unless @stopping || sock.closed?

        nil
      end

      # Answers a datagram resolv decodes (not a plain query).
      def answer_decoded_udp(sock, packet, sender)
        transaction = decoded_transaction(packet, sender, :udp)
        return unless transaction

        send_encoded(sock, answer(transaction, UDP_LIMIT), sender)
      rescue IOError
        nil # stopped meanwhile
      end

      # Answers a transaction __dns_receive__ made, its reply encoded and sent in Rust when it
      # has only address records.
      def answer_udp(sock, transaction)
        @stats[:queries] += 1
        @stats[:udp] += 1
        run_handler(transaction)
        sent = begin
          @machine.__dns_reply_to__(sock, transaction, UDP_LIMIT)
        rescue IOError
          raise
        rescue StandardError => e # a record the block made that cannot be encoded
          failed(e)
          @machine.__dns_reply_to__(sock, transaction.__servfail__, UDP_LIMIT)
        end
        @stats[:truncated] += 1 if sent == :truncated
        return unless sent.nil? # other records: resolv encodes them

        send_encoded(sock, encode(transaction, UDP_LIMIT), transaction.__sender__)
      rescue IOError
        nil # stopped meanwhile
      end

      # Sends a reply encoded in Ruby's hands (by resolv, or __dns_reply__) to the packed
      # sockaddr +sender+.
      def send_encoded(sock, reply, sender)
        @stats[:truncated] += 1 if reply.getbyte(2).anybits?(TC_BIT)
        @machine.__dns_send_to__(sock, reply, sender) # an Errno Integer: the datagram is lost
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

          transaction = UringMachine.__dns_transaction__(Transaction, data, sender, :tcp) || decoded_transaction(data, sender, :tcp)
          break unless transaction # the stream cannot be trusted any further

          queries.reject! { |f| !f.alive? }
          queries << @machine.spin { answer_tcp(fd, transaction, outbox) }
        end
      rescue IdleTimeout, IOError, SystemCallError
        nil
      ensure
        queries&.each { |f| @machine.join(f) if f.alive? }
        close_connection(fd)
      end

      def answer_tcp(fd, transaction, outbox)
        reply = answer(transaction, nil)
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

      # The Transaction for +packet+ that Rust did not read (resolv decodes it), or nil for a
      # packet that is not a query (dropped, counted).
      def decoded_transaction(packet, sender, protocol)
        query = decode_query(packet)
        return Transaction.new(query, sender, protocol) if query

        @stats[:malformed] += 1
        nil
      end

      # The reply to +transaction+ as bytes; longer than +limit+ (nil: no limit), truncated.
      def answer(transaction, limit)
        count(transaction)
        if transaction.__opcode__.zero?
          run_handler(transaction)
        else
          transaction.rcode = :NOTIMP
        end
        encode(transaction, limit)
      end

      def count(transaction)
        @stats[:queries] += 1
        @stats[transaction.protocol] += 1
      end

      def decode_query(data)
        query = Resolv::DNS::Message.decode(data)
        query.qr.zero? && !query.question.empty? ? query : nil
      rescue StandardError # Resolv::DNS::DecodeError, and what odd bytes provoke inside resolv
        nil
      end

      # Runs the block; if it raises, the transaction says SERVFAIL instead.
      def run_handler(transaction)
        @handler.call(transaction)
      rescue StandardError => e
        failed(e)
        transaction.__servfail__
      end

      def encode(transaction, limit)
        transaction.__reply__(limit) || resolv_encode(transaction, limit)
      rescue StandardError => e # a record the block made that cannot be encoded
        failed(e)
        transaction.__servfail__
        transaction.__reply__(limit) || resolv_encode(transaction, limit)
      end

      # The reply encoded by resolv (records other than addresses, or a query resolv decoded).
      def resolv_encode(transaction, limit)
        bytes = transaction.response.encode
        limit && bytes.bytesize > limit ? truncate(bytes) : bytes
      end

      def failed(error)
        @stats[:errors] += 1
        @last_error = error
      end
    end
  end
end
