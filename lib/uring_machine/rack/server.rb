# frozen_string_literal: true

# UringMachine::Rack::Server: binds, accepts connections as fibers under
# UringMachine::Scheduler, stops gracefully; with workers: N, forks and supervises N
# processes that share the listening socket (Workers).

require "socket"

module UringMachine
  module Rack
    # Serves a Rack app. #run blocks until #stop (or TERM/INT when run on the main thread).
    class Server
      attr_reader :app, :options, :parser

      def initialize(app, **options)
        @app = app
        @options = Options.new(**options)
        @parser = @options.parser
        @stats = Stats.new
        @connections = {}
        @stopping = false
        @stop_reader, @stop_writer = IO.pipe
      end

      # Binds the listening socket (done by #run if not yet); returns self.
      def bind
        @listener ||= TCPServer.new(@options.host, @options.port).tap { |server| server.listen(@options.backlog) }
        self
      end

      # The bound port (after #bind or #run).
      def port = bind.then { @listener.local_address.ip_port }

      # Serves until stopped: in this process, or in options.workers forked processes. On the
      # main thread TERM and INT stop it gracefully. Returns when it has stopped.
      def run
        bind
        Preload.rack_autoloads # before forking: the workers share them
        @options.log&.puts("uring_machine: listening on http://#{@options.host}:#{port} (pid #{::Process.pid})")
        return Workers.new(self, @options.workers).run if @options.workers.positive?

        return serve unless Thread.current == Thread.main

        StopSignals.trapped(method(:stop)) { serve }
      end

      # Serves in a worker process (Workers forks it): TERM and INT stop it gracefully. The stop
      # pipe is the worker's own: the one it inherited is shared with its siblings.
      # +master+: a pipe's read end that the master holds open: at its EOF (the master died)
      # the worker stops too.
      def run_worker(master)
        [@stop_reader, @stop_writer].each(&:close)
        @stop_reader, @stop_writer = IO.pipe
        StopSignals.trapped(method(:stop)) do
          @options.log&.puts("uring_machine: worker #{::Process.pid} serving")
          serve(master)
        end
      end

      # Asks for a graceful stop; callable from any thread and from a trap handler.
      def stop
        @stop_writer.write_nonblock(".", exception: false)
        nil
      end

      def stopping? = @stopping

      # The counters (Stats#to_h): connections, requests, app_errors, bad_requests, timeouts,
      # client_errors, internal_errors, worker_restarts (in the master).
      def stats = @stats.to_h

      # The env entries every request shares (Env adds the connection's and the request's).
      def base_env
        @base_env ||= {
          "SCRIPT_NAME" => "",
          "SERVER_NAME" => @options.host,
          "SERVER_PORT" => port.to_s,
          "rack.version" => Env::RACK_VERSION,
          "rack.url_scheme" => "http",
          "rack.errors" => $stderr,
          "rack.multithread" => false,
          "rack.multiprocess" => @options.workers.positive?,
          "rack.run_once" => false
        }.freeze
      end

      # Serves in this process under a new scheduler until #stop (or EOF on +master+); then lets
      # the requests in flight finish (up to shutdown_timeout) and closes the rest.
      def serve(master = nil)
        base_env
        UringMachine.run do
          UringMachine.spin { stop unless master.read(1) } if master
          acceptor = UringMachine.spin { accept_loop }
          @stop_reader.read(1)
          @stopping = true
          acceptor.stop
          @listener.close # new clients are refused rather than left in the backlog
          drain
        end
      end

      # Called by a Connection's fiber as it starts and ends.
      def register(connection) = @connections[connection] = true

      def unregister(connection) = @connections.delete(connection)

      # Counts a failure and logs it (with the backtrace of +error+, if given) unless +log+ is false.
      def failure(counter, message, error = nil, log: true)
        @stats.increment(counter)
        log &&= @options.log or return
        log.puts("uring_machine: #{message}")
        log.puts(error.backtrace.first(10).map { |line| "  #{line}" }) if error&.backtrace
      end

      # Counts one more of +counter+ (a Stats::COUNTERS name).
      def count(counter) = @stats.increment(counter)

      private

      def accept_loop
        loop do
          socket = @listener.accept
          @stats.increment(:connections)
          # Fiber.schedule: a connection outlives the acceptor when it is stopped.
          Fiber.schedule { serve_connection(socket) }
        rescue Errno::ECONNABORTED, Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM => e
          failure(:client_errors, "accept: #{e.class}: #{e.message}")
          sleep 0.01 unless e.is_a?(Errno::ECONNABORTED) # out of fds: let connections close some
        end
      end

      # A connection's fiber. Nothing escapes it (it would reach the acceptor, its parent): a
      # failure of the server's own is logged and counted, and only that connection ends.
      def serve_connection(socket)
        socket.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1) # streamed parts go out at once
        Connection.new(self, socket).run
      rescue StandardError => e
        failure(:internal_errors, "connection failed: #{e.class}: #{e.message}", e)
        socket.close unless socket.closed?
      end

      # Idle connections are closed now; busy ones get shutdown_timeout to finish.
      def drain
        busy = @connections.keys.count(&:busy?)
        @options.log&.puts("uring_machine: stopping (pid #{::Process.pid}): #{busy} request#{'s' unless busy == 1} in flight")
        @connections.each_key { |connection| connection.fiber.stop unless connection.busy? }
        UringMachine.move_on_after(@options.shutdown_timeout) do
          @connections.keys.each { |connection| connection.fiber.join }
        end
        @connections.each_key { |connection| connection.fiber.stop }
      end
    end
  end
end
