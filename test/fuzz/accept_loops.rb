# frozen_string_literal: true

module Fuzz
  # Part "accepts": Machine API accept loops (Machine#accept, #accept_each) on a TCP listener,
  # clients that connect (Machine#socket, #connect), send a line and read it back, handlers
  # that echo it; everything under random timeouts, the chaos fiber (interrupts, GC.compact,
  # closes of connections from other fibers) and a thread that interrupts from outside. At the
  # end the listener is closed: the acceptors must leave. A step stuck for long is a hang
  # (issue 18, item 7), found by the worker's watchdog.
  class AcceptLoops
    INTERRUPTS = [Fuzz::Interrupt, Fuzz::Timeout].freeze

    def initialize(rng, report, _index = nil)
      @rng = rng
      @report = report
      @connections = []
      @spun = 0
    end

    def run
      @machine = UringMachine.machine
      @listener = TCPServer.new("127.0.0.1", 0)
      @port = @listener.local_address.ip_port
      @deadline = Fuzz.now + @rng.rand(0.1..0.3)
      @timeouts = Timeouts.new(@rng, @report, machine: @machine, rate: 0.3)
      @victims = []
      run_fibers
    ensure
      @listener&.close
      @connections.each { |io| io.close unless io.closed? }
    end

    private

    def run_fibers
      acceptors = Array.new(@rng.rand(1..3)) { |i| spin("acceptor #{i}") { accept_loop } }
      clients = Array.new(@rng.rand(1..4)) { |i| spin("client #{i}") { client_loop } }
      chaos = Chaos.new(@machine, Random.new(@rng.rand(2**32)), victims: @victims)
      outsider = CrossThread.new(@machine, Random.new(@rng.rand(2**32)), @report, @victims, until: @deadline)
      chaos_fiber = @machine.spin { @report.guard("chaos") { chaos.run } }
      @machine.join(*clients)
      @listener.close # the acceptors must see it, whatever they wait on
      @machine.join(*acceptors)
      @machine.join(chaos_fiber)
      outsider.stop
    end

    # A fiber the chaos may interrupt; +track+: one the hang report shows. Finished ones
    # are dropped from the list now and then: Ruby 3.1 frees the stack of a fiber that ended
    # only when the Fiber itself is collected.
    def spin(label, track: true, &body)
      fiber = @machine.spin { @report.guard(label, &body) }
      @victims.select!(&:alive?) if ((@spun += 1) % 64).zero?
      @victims << fiber
      @report.track(label, fiber) if track
      fiber
    end

    def accept_loop
      loop do
        @rng.rand(4).zero? ? accept_each : accept_one
      rescue *INTERRUPTS => e
        @timeouts.check(e, "acceptor")
      rescue IOError
        break # the listener is closed
      end
    end

    def accept_one
      fd = @timeouts.around { @machine.accept(@listener) }
      handle(fd)
    end

    def accept_each
      @timeouts.around do
        @machine.accept_each(@listener) do |fd|
          handle(fd)
          break if @rng.rand(4).zero?
        end
      end
    end

    def handle(fd)
      io = Socket.for_fd(fd)
      io.autoclose = true
      @connections << io
      spin("handler #{fd}", track: false) { echo(io) }
      @report.count(:connections_accepted)
    end

    def echo(io)
      line = read_line(io) or return
      write_all(io, line)
    rescue Errno::ECONNRESET, Errno::EPIPE, IOError, *INTERRUPTS
      nil # the client gave up, the chaos closed it or interrupted the write
    ensure
      io.close unless io.closed?
    end

    def client_loop
      while Fuzz.now < @deadline
        begin
          converse
        rescue *INTERRUPTS => e
          @timeouts.check(e, "client")
        rescue Errno::ECONNRESET, Errno::EPIPE, Errno::ECONNREFUSED, IOError
          nil
        end
      end
    end

    # Connect, send a line, read it back.
    def converse
      io = Socket.for_fd(@machine.socket(Socket::AF_INET, Socket::SOCK_STREAM))
      @connections << io
      @timeouts.around { @machine.connect(io, "127.0.0.1", @port) }
      line = "hello #{@rng.rand(2**32)}\n"
      write_all(io, line)
      echoed = read_line(io)
      @report.count(:conversations) if echoed == line
    ensure
      io&.close unless io&.closed?
    end

    def write_all(io, data)
      @timeouts.around { @machine.write(io, data) }
    end

    # Reads up to a newline (nil at EOF), retrying interrupted reads.
    def read_line(io)
      line = +""
      until line.end_with?("\n")
        chunk = +""
        begin
          return nil if @timeouts.around { @machine.read(io, chunk, 64) }.zero?
        rescue *INTERRUPTS => e
          @timeouts.check(e, "reader")
          next
        end
        line << chunk
      end
      line
    end
  end
end
