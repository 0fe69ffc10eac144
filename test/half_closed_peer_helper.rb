# frozen_string_literal: true

# A TCP connection whose writing end cannot take a byte more while its peer has shut down its
# own writing side (the reader still reads). io_uring reports that shutdown (EPOLLRDHUP) to
# every poll of the writing end, wanted or not, and at once while it holds: a wait for room must
# still wait for room, and a write that promises everything must still write everything.
module HalfClosedPeerHelper
  # @writer, @reader and @queued for each test (see half_closed_full_connection).
  def setup
    super
    @writer, @reader, @queued = half_closed_full_connection
  end

  def teardown
    [@writer, @reader].each { |io| io.close unless io.closed? }
    super
  end

  # [writer, reader, the bytes already queued from writer to reader]
  def half_closed_full_connection
    server = TCPServer.new("127.0.0.1", 0)
    writer = TCPSocket.new("127.0.0.1", server.addr[1])
    reader = server.accept
    server.close
    reader.shutdown(Socket::SHUT_WR)
    # The shutdown reached the writer when it reads end-of-file.
    raise "no FIN within 5 s" unless IO.select([writer], nil, nil, 5)

    [writer, reader, fill(writer)]
  end

  # Plain non-blocking writes until the connection holds no more; how many bytes it took.
  def fill(io)
    queued = 0
    chunk = "q" * (1 << 16)
    loop do
      n = io.write_nonblock(chunk, exception: false)
      return queued if n == :wait_writable

      queued += n
    end
  end

  def payload(size)
    Random.new(size).bytes(size)
  end
end
