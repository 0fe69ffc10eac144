# frozen_string_literal: true

# rack.input: the request body, rewindable, in memory up to a size and in a Tempfile past it.

require "stringio"
require "tempfile"

module UringMachine
  module Rack
    # The body as the app reads it (gets, read, each, rewind, size). The server appends the
    # body with #<< before the app runs, then #rewind-s it; #close frees the Tempfile.
    class Input
      def initialize(in_memory_bytes)
        @in_memory_bytes = in_memory_bytes
        @io = StringIO.new(String.new(encoding: Encoding::BINARY))
      end

      def <<(data)
        spool if @io.is_a?(StringIO) && @io.size + data.bytesize > @in_memory_bytes
        @io.write(data)
        self
      end

      def gets(*args) = @io.gets(*args)

      def read(*args) = @io.read(*args)

      def each(&block)
        return enum_for(:each) unless block

        while (line = gets)
          yield line
        end
      end

      def rewind = @io.rewind

      def size = @io.size

      def external_encoding = Encoding::BINARY

      # Whether the body went to a Tempfile.
      def spooled? = !@io.is_a?(StringIO)

      def close
        @io.close! if spooled?
      end

      private

      # Moves what is in memory to a Tempfile (unlinked at once: only this object has it).
      def spool
        file = Tempfile.new("uring_machine-body")
        file.binmode
        file.unlink
        file.write(@io.string)
        @io = file
      end
    end
  end
end
