# frozen_string_literal: true

module Fuzz
  # One one-way byte stream of an episode (a pipe, a UNIX socketpair or a TCP loopback
  # connection) and what happened to it: how many records its writer confirmed, whether the
  # last one is in doubt, which end the chaos closed.
  class Channel
    TRANSPORTS = %i[pipe unix tcp].freeze
    F_SETPIPE_SZ = 1031
    HISTORY = 6 # operations of each side kept for a defect's report

    attr_reader :id, :transport, :reader, :writer
    attr_accessor :confirmed, :in_doubt, :reader_closed_by_chaos, :writer_closed_by_chaos

    def initialize(id, transport, rng)
      @id = id
      @transport = transport
      @reader, @writer = open_pair
      [@reader, @writer].each(&:binmode)
      shrink_buffers(rng) if rng.rand(3).zero? # more writes that wait, and more partial ones
      @confirmed = 0
      @in_doubt = false
      @history = { writer: [], reader: [] }
    end

    # Remembers an operation on this channel: which end, the method, the size asked, the outcome.
    def note(side, method, size, outcome)
      list = @history.fetch(side)
      list.shift if list.size >= HISTORY
      list << "#{method}(#{size}) -> #{outcome}"
    end

    def history
      @history.map { |side, list| "#{side}: #{list.join(', ')}" }.join("; ")
    end

    def socket?
      @transport != :pipe
    end

    def label
      "channel #{@id} (#{@transport})"
    end

    def close_reader
      @reader.close unless @reader.closed?
    end

    def close_writer
      @writer.close unless @writer.closed?
    end

    def close
      close_reader
      close_writer
    end

    private

    def open_pair
      case @transport
      when :pipe then IO.pipe
      when :unix then UNIXSocket.pair
      when :tcp then tcp_pair
      end
    end

    def tcp_pair
      server = TCPServer.new("127.0.0.1", 0)
      client = TCPSocket.new("127.0.0.1", server.local_address.ip_port)
      [server.accept, client]
    ensure
      server&.close
    end

    def shrink_buffers(rng)
      size = rng.rand(4096..65_536)
      if socket?
        @writer.setsockopt(Socket::SOL_SOCKET, Socket::SO_SNDBUF, size)
        @reader.setsockopt(Socket::SOL_SOCKET, Socket::SO_RCVBUF, size)
      else
        @writer.fcntl(F_SETPIPE_SZ, size)
      end
    end
  end
end
