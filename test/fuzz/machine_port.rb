# frozen_string_literal: true

module Fuzz
  # A channel's ends through the Machine API: Machine#write, #writev, #send (sockets) to write,
  # #read, #recv (sockets) to read, into a reused buffer or a fresh small (embedded) String.
  class MachinePort
    attr_reader :last_method

    def initialize(machine, channel, rng)
      @machine = machine
      @channel = channel
      @rng = rng
      @buffer = +""
    end

    # A wait between operations, where a pending interrupt may arrive.
    def pause
      @last_method = :pause
      case @rng.rand(32)
      when 0 then @machine.sleep(@rng.rand * 0.002)
      when 1, 2 then @machine.snooze
      end
    end

    # [bytes written, whether the method promises to write them all (they all do)]
    def write(piece)
      io = @channel.writer
      @last_method = pick_write
      count = case @last_method
              when :writev then @machine.writev(io, *split(piece))
              when :send then @machine.send(io, piece)
              else @machine.write(io, piece)
              end
      [count, true]
    end

    # What a write that raised +error+ wrote: 0 when the raise came from a pause, the count
    # the exception carries (UringMachine::PartialWrite), else nil (unknown).
    def written_before(error)
      return 0 if @last_method == :pause

      error.respond_to?(:bytes_written) ? error.bytes_written : nil
    end

    def pick_read
      @channel.socket? && @rng.rand(2).zero? ? :recv : :read
    end

    def lossy?(_method)
      false
    end

    # The bytes read with +method+, or nil at the end of the stream.
    def read(max, method)
      @last_method = method
      buffer = @rng.rand(4).zero? ? +"" : @buffer
      count = @machine.public_send(method, @channel.reader, buffer, max)
      count.zero? ? nil : buffer.byteslice(0, count)
    end

    private

    def pick_write
      case @rng.rand(8)
      when 0, 1 then :writev
      when 2 then @channel.socket? ? :send : :write
      else :write
      end
    end

    def split(piece)
      return [piece] if piece.bytesize < 3

      cuts = [@rng.rand(1...piece.bytesize), @rng.rand(1...piece.bytesize)].sort.uniq
      [0, *cuts, piece.bytesize].each_cons(2).map { |from, to| piece.byteslice(from, to - from) }
    end
  end
end
