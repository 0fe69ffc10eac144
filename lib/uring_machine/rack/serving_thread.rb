# frozen_string_literal: true

# One thread's share of a server: a scheduler of its own, an accept loop on the listening socket
# that every thread of the process shares, its connections and its counters. threads: M runs M
# of them in each process (the kernel hands each new connection to one thread's pending accept).

module UringMachine
  module Rack
    # What a Connection serves through (the app, options, counters of its thread).
    class ServingThread
      attr_reader :stats

      def initialize(server)
        @server = server
        @stats = Stats.new
        @connections = {}
        @stopping = false
        renew_stop_pipe
      end

      def app = @server.app

      def options = @server.options

      def parser = @server.parser

      def base_env = @server.base_env

      def stopping? = @stopping

      # Asks this thread to stop gracefully; callable from any thread and from a trap handler.
      def stop
        @stop_writer.write_nonblock(".", exception: false)
        nil
      end

      # A pipe of this process's own (a forked worker shares the one it inherited with its
      # siblings).
      def renew_stop_pipe
        [@stop_reader, @stop_writer].each { |io| io&.close }
        @stop_reader, @stop_writer = IO.pipe
      end

      # Serves on the calling thread under a new scheduler until #stop (or EOF on +master+,
      # which stops the whole server). Once this thread no longer accepts, calls +accepting_ended+;
      # then lets the requests in flight finish (up to shutdown_timeout) and closes the rest.
      def serve(listener, master, accepting_ended)
        UringMachine.run do
          UringMachine.spin { @server.stop unless master.read(1) } if master
          acceptor = UringMachine.spin { accept_loop(listener) }
          @stop_reader.read(1)
          @stopping = true
          acceptor.stop
          accepting_ended.call
          drain
        end
      end

      # Called by a Connection's fiber as it starts and ends.
      def register(connection) = @connections[connection] = true

      def unregister(connection) = @connections.delete(connection)

      # Counts a failure and logs it (with the backtrace of +error+, if given) unless +log+ is false.
      def failure(counter, message, error = nil, log: true)
        @stats.increment(counter)
        @server.log(message, error) if log
      end

      # Counts one more of +counter+ (a Stats::COUNTERS name).
      def count(counter) = @stats.increment(counter)

      private

      def accept_loop(listener)
        loop do
          socket = listener.accept
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
        @server.options.log&.puts("uring_machine: stopping (pid #{::Process.pid}): #{busy} request#{'s' unless busy == 1} in flight")
        @connections.each_key { |connection| connection.fiber.stop unless connection.busy? }
        UringMachine.move_on_after(@server.options.shutdown_timeout) do
          @connections.keys.each { |connection| connection.fiber.join }
        end
        @connections.each_key { |connection| connection.fiber.stop }
      end
    end
  end
end
