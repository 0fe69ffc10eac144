# frozen_string_literal: true

module Fuzz
  # The reading side of one channel: parses the bytes read into records and checks each one
  # (intact, of this channel, the next sequence number), then, at the end of the stream, that
  # every record the writer confirmed arrived. Checking stops at the first damaged record:
  # nothing after it can be framed.
  class StreamCheck
    attr_reader :records

    def initialize(format, channel, report)
      @format = format
      @channel = channel
      @report = report
      @buffer = +"".b
      @pos = 0        # start of the first record not parsed yet
      @discarded = 0  # stream bytes dropped from the front of @buffer
      @next = 0       # the sequence number due
      @records = 0
      @broken = false
    end

    def <<(bytes)
      return self if @broken

      @buffer << bytes
      parse
      self
    end

    # The stream is over: +eof+ says whether it was read to its end (false: the reader's end
    # was closed first, only what was read is checked). The writer confirmed +confirmed+
    # records; +in_doubt+ when a write of the next one raised without saying how much it wrote.
    def finish(eof:, confirmed:, in_doubt:)
      return if @broken || !eof

      leftover = @buffer.bytesize - @pos
      if @next < confirmed
        kind = leftover.positive? ? :truncated : :missing
        defect(kind, "stream ended after #{@next} records and #{leftover} more bytes; the writer confirmed #{confirmed}")
      elsif leftover.positive? && !(in_doubt && @next == confirmed)
        defect(:truncated, "stream ended in half a record (#{leftover} bytes of record #{@next}) that no write raised for")
      elsif @next > confirmed + (in_doubt ? 1 : 0)
        defect(:corrupt, "#{@next} records arrived; the writer confirmed #{confirmed}#{' (+1 in doubt)' if in_doubt}")
      end
    end

    # Stops checking: the reader lost bytes on purpose (+why+), so nothing after can be framed.
    def abandon(why)
      return if @broken

      @broken = true
      @buffer.clear
      @report.count(:streams_abandoned)
      @abandoned = why
    end

    private

    def parse
      while (available = @buffer.bytesize - @pos) >= RecordFormat::HEADER_SIZE
        magic, channel, seq, length = @buffer.unpack(RecordFormat::HEADER, offset: @pos)
        unless magic == RecordFormat::MAGIC && channel == @channel.id && length.between?(1, RecordFormat::MAX_PAYLOAD)
          return damaged("no record header where record #{@next} should start: " \
                         "#{@buffer.byteslice(@pos, RecordFormat::HEADER_SIZE).inspect}")
        end
        break if available < RecordFormat.size_of(length)
        return unless check(seq, length)
      end
      drop_parsed
    end

    def check(seq, length)
      body = RecordFormat::HEADER_SIZE + length
      intact = Zlib.crc32(@buffer.byteslice(@pos, body)) == @buffer.unpack1("N", offset: @pos + body) &&
               @buffer.byteslice(@pos + RecordFormat::HEADER_SIZE, length) == @format.payload(@channel.id, seq, length)
      return damaged("record #{seq} (#{length} B payload) is damaged; record #{@next} was due") unless intact

      if seq > @next
        defect(:missing, "record #{seq} arrived where #{@next} was due (#{seq - @next} skipped)")
      elsif seq < @next
        defect(:duplicated, "record #{seq} arrived again after #{@next - 1}")
      end
      @next = seq + 1 if seq >= @next
      @records += 1
      @pos += body + RecordFormat::TRAILER_SIZE
    end

    def drop_parsed
      if @pos == @buffer.bytesize
        @discarded += @pos
        @buffer.clear
        @pos = 0
      elsif @pos > 65_536
        @discarded += @pos
        @buffer = @buffer.byteslice(@pos..)
        @pos = 0
      end
    end

    def damaged(what)
      defect(:corrupt, "#{what} (stream byte #{@discarded + @pos})")
      @broken = true
      @buffer.clear
      false
    end

    def defect(kind, detail)
      @report.defect(kind, "#{@channel.label}: #{detail}; last operations: #{@channel.history}")
    end
  end
end
