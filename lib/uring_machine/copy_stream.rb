# frozen_string_literal: true

module UringMachine
  # IO.copy_stream under a scheduler that has io_splice: when both ends are descriptors (an IO,
  # a File, or a path) the bytes move with splice(2) inside the kernel while the calling fiber
  # waits in the ring and the others run. Anything else (StringIO, objects with read/write, no
  # scheduler, a blocking fiber) goes to CRuby's own copy_stream, unchanged.
  module CopyStream
    READ_FLAGS = File::RDONLY | File::NOCTTY
    WRITE_FLAGS = File::WRONLY | File::CREAT | File::TRUNC | File::NOCTTY

    def copy_stream(src, dst, copy_length = nil, src_offset = nil)
      scheduler = Fiber.scheduler
      return super unless scheduler.respond_to?(:io_splice) && !Fiber.current.blocking?
      return super unless CopyStream.descriptor?(src) && CopyStream.descriptor?(dst)
      return super unless CopyStream.count?(copy_length) && CopyStream.count?(src_offset)

      CopyStream.splice(scheduler, src, dst, copy_length, src_offset)
    end

    class << self
      # What CRuby's copy_stream treats as a descriptor: an IO, or a path to open.
      def descriptor?(object)
        !object.equal?(ARGF) && (object.is_a?(IO) || object.is_a?(String) || object.respond_to?(:to_path))
      end

      # nil or an Integer; CRuby itself converts (or rejects) anything else.
      def count?(value)
        value.nil? || value.is_a?(Integer)
      end

      def splice(scheduler, src, dst, copy_length, src_offset)
        # Negative lengths and offsets mean "all" and "the current position", as in CRuby.
        copy_length = nil if copy_length&.negative?
        src_offset = nil if src_offset&.negative?
        src_io, close_src = open_end(src, READ_FLAGS)
        begin
          dst_io, close_dst = open_end(dst, WRITE_FLAGS, 0o666)
          begin
            copy(scheduler, src_io, dst_io, copy_length, src_offset)
          ensure
            dst_io.close if close_dst
          end
        ensure
          src_io.close if close_src
        end
      end

      private

      def open_end(object, flags, *perm)
        io = object.is_a?(IO) ? object : IO.try_convert(object)
        return [io, false] if io

        [File.new(object, flags, *perm), true]
      end

      # Bytes Ruby already read ahead from src go first (unless reading at an offset); dst's
      # own write buffer is flushed before the kernel appends to the descriptor.
      def copy(scheduler, src_io, dst_io, copy_length, src_offset)
        total = 0
        read_ahead = UringMachine.__copy_stream_check__(src_io, dst_io)
        if src_offset.nil? && read_ahead.positive?
          chunk = src_io.readpartial(copy_length ? [read_ahead, copy_length].min : read_ahead)
          dst_io.write(chunk)
          total += chunk.bytesize
          copy_length -= chunk.bytesize if copy_length
        end
        dst_io.flush
        return total if copy_length&.zero?

        begin
          total + scheduler.io_splice(src_io, dst_io, copy_length, src_offset)
        rescue Exception => e # rubocop:disable Lint/RescueException
          # An interrupted copy tells how much went out in all (see PartialWrite).
          PartialWrite.__add__(e, total) if total.positive?
          raise
        end
      end
    end
  end

  IO.singleton_class.prepend(CopyStream)
end
