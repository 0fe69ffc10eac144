# frozen_string_literal: true

# UringMachine::Rack::Server: binds, accepts connections as fibers under
# UringMachine::Scheduler (in threads: M threads, ServingThread), stops gracefully; with
# workers: N, forks and supervises N processes that share the listening socket (Workers).

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
        @stats = Stats.new # the master's own (worker_restarts)
        @threads = Array.new(@options.threads) { ServingThread.new(self) }
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

      # Serves in a worker process (Workers forks it): TERM and INT stop it gracefully.
      # +master+: a pipe's read end that the master holds open: at its EOF (the master died)
      # the worker stops too.
      def run_worker(master)
        @threads.each(&:renew_stop_pipe)
        StopSignals.trapped(method(:stop)) do
          @options.log&.puts("uring_machine: worker #{::Process.pid} serving")
          serve(master)
        end
      end

      # Asks for a graceful stop; callable from any thread and from a trap handler.
      def stop
        @threads.each(&:stop)
        nil
      end

      def stopping? = @threads.any?(&:stopping?)

      # The counters (Stats#to_h), summed over the serving threads: connections, requests,
      # app_errors, bad_requests, timeouts, client_errors, internal_errors, worker_restarts (in
      # the master).
      def stats
        @threads.map { |thread| thread.stats.to_h }.inject(@stats.to_h) { |sum, counts| sum.merge(counts) { |_, a, b| a + b } }
      end

      # The env entries every request shares (Env adds the connection's and the request's).
      def base_env
        @base_env ||= {
          "SCRIPT_NAME" => "",
          "SERVER_NAME" => @options.host,
          "SERVER_PORT" => port.to_s,
          "rack.version" => Env::RACK_VERSION,
          "rack.url_scheme" => "http",
          "rack.errors" => $stderr,
          "rack.multithread" => @options.threads > 1,
          "rack.multiprocess" => @options.workers.positive?,
          "rack.run_once" => false
        }.freeze
      end

      # Serves in this process until #stop (or EOF on +master+): on this thread and on
      # options.threads - 1 more, each under a scheduler of its own. The listening socket is
      # closed once no thread accepts (new clients are refused rather than left in the backlog).
      def serve(master = nil)
        base_env
        accepting = @threads.size
        lock = Mutex.new
        accepting_ended = -> { lock.synchronize { @listener.close if (accepting -= 1).zero? } }
        first, *others = @threads
        others = others.map { |thread| Thread.new { thread.serve(@listener, master, accepting_ended) } }
        served = false
        first.serve(@listener, master, accepting_ended)
        served = true
      ensure
        stop unless served # this thread failed: the others must not serve on alone
        others&.each(&:join)
      end

      # Counts a failure of the master's and logs it.
      def failure(counter, message, error = nil)
        @stats.increment(counter)
        log(message, error)
      end

      # Logs +message+ (with the backtrace of +error+, if given) to options.log.
      def log(message, error = nil)
        log = @options.log or return
        log.puts("uring_machine: #{message}")
        log.puts(error.backtrace.first(10).map { |line| "  #{line}" }) if error&.backtrace
      end
    end
  end
end
