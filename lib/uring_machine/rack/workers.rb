# frozen_string_literal: true

# workers: N: the bound server forked into N processes that share its listening socket, each
# restarted when it dies; TERM or INT to the master stops them all gracefully.

module UringMachine
  module Rack
    # The master's side: forks, waits, restarts. The master runs no scheduler: it only waits.
    class Workers
      def initialize(server, count)
        @server = server
        @count = count
        @pids = []
        @stopping = false
        @master = ::Process.pid
      end

      # Runs until every worker has exited after a stop; returns the master's Server.
      def run
        # Workers read this pipe; the master never writes: EOF means the master is gone.
        @master_r, @master_w = IO.pipe
        StopSignals.trapped(method(:stop)) do
          @count.times { start_worker }
          @server.options.log&.puts("uring_machine: workers started: #{@pids.join(' ')}")
          supervise
        end
        @server
      ensure
        [@master_r, @master_w].each { |io| io&.close }
      end

      # Forwards a graceful stop to the workers (from a trap handler too).
      def stop
        # In a worker that has not set its own trap yet (it inherited this one): it serves
        # nothing yet, so it ends at once.
        exit!(0) unless ::Process.pid == @master

        @stopping = true
        @pids.each { |pid| ::Process.kill(:TERM, pid) rescue Errno::ESRCH } # rubocop:disable Style/RescueModifier
      end

      private

      def start_worker
        pid = fork do
          status = 1
          begin
            @master_w.close
            @server.run_worker(@master_r)
            status = 0
          ensure
            $stdout.flush
            $stderr.flush
            exit!(status) # not the master's at_exit handlers
          end
        end
        @pids << pid
        ::Process.kill(:TERM, pid) if @stopping # a stop that came while it was forked missed it
      end

      def supervise
        until @pids.empty?
          pid, status = ::Process.wait2
          @pids.delete(pid)
          next if @stopping

          @server.failure(:worker_restarts, "worker #{pid} died (#{status.inspect}): starting another")
          start_worker
        end
      end
    end
  end
end
