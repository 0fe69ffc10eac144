# frozen_string_literal: true

# UringMachine::DNS::Transport: one query to one nameserver, UDP then TCP.

module UringMachine
  module DNS
    # One query to one server through the Machine's socket ops: UDP on a connected socket (the
    # kernel drops datagrams from any other address; Linux picks a random source port), then
    # TCP (RFC 1035 length prefix) when the answer came back truncated. A reply is accepted
    # only if its id, QR bit, opcode and question section match the query; anything else
    # (garbage, a stray or forged packet) is dropped and the wait goes on until the deadline.
    module Transport
      # Raised inside a wait whose time ran out; never leaves the resolver. A class of its own,
      # so a timeout the caller set around the lookup is never mistaken for ours.
      class Expired < Exception; end # rubocop:disable Lint/InheritException

      # The server closed a TCP connection before the whole answer came.
      class ShortReply < StandardError; end

      MAX_UDP = 65_535
      HEADER_SIZE = 12
      TC_BIT = 0x0200 # in the header's flags

      module_function

      # The reply (a Resolv::DNS::Message) to +query+ from +server+ ([host, port]), or raises
      # Expired after +timeout+ seconds, or the socket's SystemCallError (ECONNREFUSED: nothing
      # listens there).
      def exchange(machine, server, query, timeout)
        deadline = DNS.clock + timeout
        reply = udp(machine, server, query, deadline)
        reply = tcp(machine, server, query, DNS.clock + timeout) if reply.tc == 1 # a fresh try, over TCP
        reply
      end

      def udp(machine, (host, port), query, deadline)
        fd = machine.socket(family(host), Socket::SOCK_DGRAM)
        begin
          machine.connect(fd, host, port)
          machine.send(fd, query.encode)
          buffer = +""
          loop do
            wait(machine, deadline) { machine.recv(fd, buffer, MAX_UDP) }
            reply = answer_to(query, buffer)
            return reply if reply
          end
        ensure
          machine.close(fd)
        end
      end

      def tcp(machine, (host, port), query, deadline)
        fd = machine.socket(family(host), Socket::SOCK_STREAM)
        begin
          wait(machine, deadline) do
            machine.connect(fd, host, port)
            bytes = query.encode
            machine.send(fd, [bytes.bytesize].pack("n") + bytes)
          end
          loop do
            length = read_exactly(machine, fd, 2, deadline).unpack1("n")
            reply = answer_to(query, read_exactly(machine, fd, length, deadline))
            return reply if reply
          end
        ensure
          machine.close(fd)
        end
      end

      def read_exactly(machine, fd, count, deadline)
        data = +"".b
        chunk = +""
        while data.bytesize < count
          n = wait(machine, deadline) { machine.recv(fd, chunk, count - data.bytesize) }
          raise ShortReply, "connection closed after #{data.bytesize} of #{count} bytes" if n.zero?

          data << chunk
        end
        data
      end

      # The block's value, or Expired once +deadline+ has passed.
      def wait(machine, deadline, &block)
        remaining = deadline - DNS.clock
        raise Expired if remaining <= 0

        machine.timeout(remaining, Expired, &block)
      end

      # +bytes+ decoded, if they are the reply to +query+; else nil. Of a truncated reply (TC),
      # only the header and question are decoded: newer resolv versions (0.3+) stop decoding
      # at the TC bit and drop the question, older ones fail on records cut short.
      def answer_to(query, bytes)
        return nil if bytes.bytesize < HEADER_SIZE

        truncated = bytes.getbyte(2).anybits?(TC_BIT >> 8)
        reply = begin
          Resolv::DNS::Message.decode(truncated ? question_part(bytes) : bytes)
        rescue StandardError # Resolv::DNS::DecodeError and whatever malformed input provokes
          return nil
        end
        reply.tc = 1 if truncated
        return nil unless reply.id == query.id && reply.qr == 1 && reply.opcode == query.opcode
        return nil unless reply.question.size == query.question.size

        matched = reply.question.zip(query.question).all? do |(name, type), (asked_name, asked_type)|
          type == asked_type && name == asked_name
        end
        matched ? reply : nil
      end

      # The header and question of a message, with TC cleared and no record counts.
      def question_part(bytes)
        id, flags, questions = bytes.unpack("nnn")
        [id, flags & ~TC_BIT, questions, 0, 0, 0].pack("n6") + bytes.byteslice(HEADER_SIZE..)
      end

      def family(host)
        host.include?(":") ? Socket::AF_INET6 : Socket::AF_INET
      end
    end
  end
end
