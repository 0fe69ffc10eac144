# frozen_string_literal: true

module Fuzz
  # Self-checking records: "UMFZ", channel (u16), sequence number (u32), payload length (u32),
  # the payload, then the CRC32 of everything before it (u32). The payload is a slice of the
  # episode's random pattern chosen by (channel, sequence, length): a reader knows what every
  # byte must be without being told.
  class RecordFormat
    MAGIC = "UMFZ".b
    HEADER = "a4nNN"
    HEADER_SIZE = 14
    TRAILER_SIZE = 4
    MAX_PAYLOAD = 1 << 20

    def initialize(rng)
      @pattern = rng.bytes(MAX_PAYLOAD + 4099)
    end

    def payload(channel, seq, length)
      span = @pattern.bytesize - length + 1
      @pattern.byteslice(((channel * 2_654_435_761) + (seq * 40_503)) % span, length)
    end

    def record(channel, seq, length)
      bytes = [MAGIC, channel, seq, length].pack(HEADER)
      bytes << payload(channel, seq, length)
      bytes << [Zlib.crc32(bytes)].pack("N")
    end

    def self.size_of(length)
      HEADER_SIZE + length + TRAILER_SIZE
    end

    # Payload lengths from 1 B to 1 MiB, most of them small (mean about 4 KiB).
    def self.random_length(rng)
      case rng.rand(1000)
      when 0...800 then rng.rand(1..200)
      when 800...970 then rng.rand(201..16_384)
      when 970...997 then rng.rand(16_385..262_144)
      else rng.rand(262_145..MAX_PAYLOAD)
      end
    end
  end
end
