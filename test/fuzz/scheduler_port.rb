# frozen_string_literal: true

module Fuzz
  # A channel's ends through Ruby's own IO methods under the scheduler: IO#write (one String or
  # two pieces), write_nonblock + wait_writable; readpartial, gets, read_nonblock + wait_readable.
  class SchedulerPort
    attr_reader :last_method

    def initialize(machine, channel, rng)
      @machine = machine
      @channel = channel
      @rng = rng
    end

    # A wait between operations, where a pending interrupt may arrive.
    def pause
      @last_method = :pause
      case @rng.rand(32)
      when 0 then sleep(@rng.rand * 0.002)
      when 1, 2 then @machine.snooze
      end
    end

    # A wait that does nothing: an interrupt on its way to this fiber arrives here.
    def snooze
      @machine.snooze
    end

    # [bytes written, whether the method promises to write them all]
    def write(piece)
      io = @channel.writer
      @last_method = pick_write(piece)
      case @last_method
      when :write_pieces
        cut = @rng.rand(1...piece.bytesize)
        [io.write(piece.byteslice(0, cut), piece.byteslice(cut..)), true]
      when :write_nonblock then write_nonblock(io, piece)
      else [io.write(piece), true]
      end
    end

    # What a write that raised +error+ wrote: 0 when the raise came from a wait that writes
    # nothing, the count the exception carries (UringMachine::PartialWrite), else nil (unknown).
    def written_before(error)
      return 0 if %i[pause write_nonblock wait_writable].include?(@last_method)

      error.respond_to?(:bytes_written) ? error.bytes_written : nil
    end

    def pick_read
      %i[gets read_nonblock readpartial].sample(random: @rng)
    end

    # An interrupt makes IO#gets lose what it had read of a line.
    def lossy?(method)
      method == :gets
    end

    # The bytes read with +method+, or nil at the end of the stream.
    def read(max, method)
      io = @channel.reader
      @last_method = method
      case method
      when :gets then io.gets("\n", max)
      when :read_nonblock then read_nonblock(io, max)
      else readpartial(io, max)
      end
    end

    private

    def pick_write(piece)
      case @rng.rand(10)
      when 0, 1 then piece.bytesize < 2 ? :write : :write_pieces
      when 2 then :write_nonblock
      else :write
      end
    end

    def write_nonblock(io, piece)
      count = io.write_nonblock(piece, exception: false)
      return [count, false] unless count == :wait_writable

      @last_method = :wait_writable
      io.wait_writable
      [0, false]
    end

    def read_nonblock(io, max)
      loop do
        chunk = io.read_nonblock(max, exception: false)
        return chunk unless chunk == :wait_readable

        @last_method = :wait_readable
        io.wait_readable
        @last_method = :read_nonblock
      end
    end

    def readpartial(io, max)
      io.readpartial(max)
    rescue EOFError
      nil
    end
  end
end
