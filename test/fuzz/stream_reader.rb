# frozen_string_literal: true

module Fuzz
  # Reads a channel to its end through a port and feeds its StreamCheck. Interrupts and
  # timeouts are retried: a read that completed returns its bytes (the interrupt comes at the
  # next wait), a cancelled one read nothing, so no byte may go missing either way.
  class StreamReader
    attr_reader :eof

    def initialize(channel, port, check:, rng:, report:, timeouts:)
      @channel = channel
      @port = port
      @check = check
      @rng = rng
      @report = report
      @timeouts = timeouts
      @eof = false
    end

    def run
      while (chunk = read_once)
        @check << chunk
      end
      @eof = true
    rescue IOError => e
      @report.error("#{@channel.label} reader", e) unless @channel.reader_closed_by_chaos
    ensure
      @report.count(:records_read, @check.records)
      @channel.close_reader
    end

    private

    def read_once
      method = nil
      @port.pause
      size = read_size
      method = @port.pick_read
      chunk = read_with(method, size)
      @channel.note(:reader, @port.last_method, size, chunk&.bytesize)
      chunk
    rescue Fuzz::Interrupt, Fuzz::Timeout => e
      @channel.note(:reader, @port.last_method, size, e.class)
      @timeouts.check(e, "#{@channel.label} reader")
      @check.abandon("#{method} was interrupted") if method && @port.lossy?(method)
      retry
    end

    # A read that an interrupt would make lossy runs without timeout, shielded from the chaos,
    # once the interrupts already on their way have arrived.
    def read_with(method, size)
      return @timeouts.around { @port.read(size, method) } unless @port.lossy?(method)

      Fuzz.shield do
        settle
        @port.read(size, method)
      end
    end

    def settle
      @port.snooze
    rescue Fuzz::Interrupt, Fuzz::Timeout => e
      @timeouts.check(e, "#{@channel.label} reader")
      retry
    end

    def read_size
      @rng.rand(8).zero? ? @rng.rand(1..64) : @rng.rand(4096..131_072)
    end
  end
end
