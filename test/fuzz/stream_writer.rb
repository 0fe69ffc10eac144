# frozen_string_literal: true

module Fuzz
  # Writes a channel's records until the deadline, through a port (MachinePort, SchedulerPort),
  # following the contract of issue 18: a write that promises everything either writes
  # everything or raises, with the bytes it wrote in `e.bytes_written` (UringMachine::
  # PartialWrite). The writer then writes the rest of the record, so a wrong count shows as a
  # damaged stream. A raise that does not say what it wrote leaves the record in doubt and ends
  # the channel; a short count from a write that promises everything is a defect.
  class StreamWriter
    INTERRUPTS = [Fuzz::Interrupt, Fuzz::Timeout, IOError, SystemCallError].freeze

    def initialize(channel, port, format:, rng:, report:, timeouts:, deadline:)
      @channel = channel
      @port = port
      @format = format
      @rng = rng
      @report = report
      @timeouts = timeouts
      @deadline = deadline
    end

    def run
      seq = 0
      while Fuzz.now < @deadline
        record = @format.record(@channel.id, seq, RecordFormat.random_length(@rng))
        break unless deliver(record, seq)

        confirm(seq)
        seq += 1
      end
    ensure
      @channel.close_writer
    end

    private

    # true once all of +record+ is written; false when the channel ends (the record in
    # doubt, or the stream closed).
    def deliver(record, seq)
      sent = 0
      while sent < record.bytesize
        piece = sent.zero? ? record : record.byteslice(sent..)
        begin
          @port.pause
          count, promised_all = @timeouts.around { @port.write(piece) }
          @channel.note(:writer, @port.last_method, piece.bytesize, count)
        rescue *INTERRUPTS => e
          @channel.note(:writer, @port.last_method, piece.bytesize, e.class)
          written = interrupted(e, piece) or return in_doubt
          sent += written
          next if e.is_a?(Fuzz::Interrupt) || e.is_a?(Fuzz::Timeout)

          # the stream is closed; a record it took whole is still confirmed
          sent == record.bytesize ? confirm(seq) : in_doubt
          return false
        end
        return short_write(seq, count, piece, record) if count != piece.bytesize && promised_all

        sent += count
      end
      true
    end

    # What the interrupted write wrote; nil when unknown or unexpected.
    def interrupted(error, piece)
      return unless expected_error?(error)

      @timeouts.check(error, "#{@channel.label} writer")
      written = @port.written_before(error)
      return written if written.nil? || (written.is_a?(Integer) && written.between?(0, piece.bytesize))

      @report.defect(:corrupt, "#{@channel.label}: bytes_written=#{written.inspect} for a write of #{piece.bytesize} bytes")
      nil
    end

    def confirm(seq)
      @channel.confirmed = seq + 1
      @report.count(:records_written)
    end

    def in_doubt
      @channel.in_doubt = true
      false
    end

    # IOError when the chaos closed this end, EPIPE/ECONNRESET when it closed the other one.
    def expected_error?(error)
      case error
      when Fuzz::Interrupt, Fuzz::Timeout then true
      when IOError then @channel.writer_closed_by_chaos || unexpected(error)
      when Errno::EPIPE, Errno::ECONNRESET then @channel.reader_closed_by_chaos || unexpected(error)
      else unexpected(error)
      end
    end

    def unexpected(error)
      @report.error("#{@channel.label} writer", error)
      false
    end

    def short_write(seq, count, piece, record)
      @report.defect(:short_write, "#{@channel.label}: record #{seq} (#{record.bytesize} B): #{@port.last_method} " \
                                   "returned #{count} for #{piece.bytesize} bytes without raising")
      @channel.in_doubt = true
      false
    end
  end
end
