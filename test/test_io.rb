# frozen_string_literal: true

require_relative "test_helper"
require "tempfile"
require "digest"

class TestIO < MachineTest
  def setup
    super
    @r, @w = IO.pipe
  end

  def teardown
    [@r, @w].each { |io| io.close unless io.closed? }
    super
  end

  def test_read_waits_in_the_ring_for_data
    buffer = +""
    reader = machine.spin { machine.read(@r, buffer, 100) }
    machine.snooze
    machine.write(@w, "hello")
    assert_equal 5, machine.join(reader)
    assert_equal "hello", buffer
    assert_equal Encoding::BINARY, buffer.encoding
    assert_operator machine.metrics[:ops][:read], :>=, 1
  end

  def test_read_takes_available_data_without_the_ring
    @w << "ready"
    buffer = +""
    assert_equal 5, machine.read(@r, buffer, 100)
    assert_equal "ready", buffer
    assert_nil machine.metrics[:ops][:read]
    assert_equal 1, machine.metrics[:direct][:read]
  end

  # Sockets are read with recv and pipes with preadv2; a descriptor number that changes from
  # one to the other (reopen, or close and reuse) must still be read correctly.
  # After a read that had to wait, the fd's next read goes straight to the ring (a peer's
  # next message is rarely there yet); one that fills the buffer brings direct reads back.
  def test_reads_go_to_the_ring_after_one_waited_until_data_streams
    buffer = +""
    reader = machine.spin { machine.read(@r, buffer, 4) }
    machine.snooze
    machine.write(@w, "ab")
    assert_equal 2, machine.join(reader)
    direct = machine.metrics[:direct][:read].to_i
    ring = machine.metrics[:ops][:read]

    @w << "wxyz"
    assert_equal 4, machine.read(@r, buffer, 4)
    assert_equal "wxyz", buffer
    assert_equal [direct, ring + 1], [machine.metrics[:direct][:read].to_i, machine.metrics[:ops][:read]]

    @w << "more"
    assert_equal 4, machine.read(@r, buffer, 4)
    assert_equal "more", buffer
    assert_equal [direct + 1, ring + 1], [machine.metrics[:direct][:read].to_i, machine.metrics[:ops][:read]]
  end

  def test_a_descriptor_that_becomes_another_kind_of_file
    a, b = UNIXSocket.pair
    b.write("socket")
    assert_equal 6, machine.read(a, buffer = +"", 10)
    assert_equal "socket", buffer
    a.reopen(@r)
    @w << "pipe"
    assert_equal 4, machine.read(a, buffer, 10)
    assert_equal "pipe", buffer
    c, d = UNIXSocket.pair
    a.reopen(c)
    d.write("back")
    assert_equal 4, machine.read(a, buffer, 10)
    assert_equal "back", buffer
  ensure
    [a, b, c, d].each { |io| io&.close unless io&.closed? }
  end

  def test_read_returns_zero_at_eof
    @w.close
    assert_equal 0, machine.read(@r, +"", 10)
  end

  def test_read_with_buffer_offsets
    buffer = +"abc"
    @w << "de"
    assert_equal 2, machine.read(@r, buffer, 10, -1)
    assert_equal "abcde", buffer
    @w << "XY"
    assert_equal 2, machine.read(@r, buffer, 10, 1)
    assert_equal "aXY", buffer
    assert_raises(ArgumentError) { machine.read(@r, buffer, 10, 99) }
  end

  def test_read_grows_the_string
    data = "z" * 50_000
    writer = machine.spin { machine.write(@w, data) }
    buffer = +""
    received = +""
    received << buffer while received.bytesize < data.bytesize && machine.read(@r, buffer, 60_000).positive?
    machine.join(writer)
    assert_equal data, received
  end

  def test_read_into_io_buffer
    @w << "buffered"
    io_buffer = IO::Buffer.new(16)
    assert_equal 8, machine.read(@r, io_buffer, 8)
    assert_equal "buffered", io_buffer.get_string(0, 8)
    assert_raises(ArgumentError) { machine.read(@r, io_buffer, 32) }
  end

  def test_write_from_io_buffer_and_length
    io_buffer = IO::Buffer.new(8)
    io_buffer.set_string("abcdefgh")
    assert_equal 3, machine.write(@w, io_buffer, 3)
    assert_equal "abc", @r.read_nonblock(10)
    assert_raises(ArgumentError) { machine.write(@w, "abc", 4) }
  end

  def test_write_waits_when_the_pipe_is_full_and_transfers_large_data_exactly
    data = Random.new(42).bytes(8 * 1024 * 1024)
    writer = machine.spin { machine.write(@w, data) }
    digest = Digest::SHA256.new
    total = 0
    buffer = +""
    while total < data.bytesize
      n = machine.read(@r, buffer, 65_536)
      break if n.zero?

      digest << buffer
      total += n
    end
    assert_equal data.bytesize, machine.join(writer)
    assert_equal Digest::SHA256.hexdigest(data), digest.hexdigest
    assert_operator machine.metrics[:ops][:write], :>=, 1, "a full pipe sends the write to the ring"
  end

  def test_write_to_a_pipe_without_reader_raises_epipe
    @r.close
    assert_raises(Errno::EPIPE) { machine.write(@w, "x") }
  end

  def test_writev
    assert_equal 9, machine.writev(@w, "one", +"two", "three"[0, 3])
    assert_equal "onetwothr", @r.read_nonblock(20)
  end

  def test_file_read_and_write_at_offsets
    Tempfile.create("um") do |file|
      machine.write(file, "0123456789")
      assert_equal 3, machine.write(file, "abc", nil, 2)
      buffer = +""
      assert_equal 4, machine.read(file, buffer, 4, 0, 4)
      assert_equal "c567", buffer
      assert_equal 10, machine.read(file, buffer, 100, 0, 0)
      assert_equal "01abc56789", buffer
      assert_equal 0, machine.fsync(file)
    end
  end

  def test_open_statx_and_close_through_the_ring
    Tempfile.create("um") do |file|
      file.write("hello")
      file.flush
      fd = machine.open(file.path, File::RDONLY)
      buffer = +""
      assert_equal 5, machine.read(fd, buffer, 100)
      assert_equal fd, machine.close(fd)
      assert_equal 1, machine.metrics[:ops][:close]
      stat = machine.statx(file.path)
      assert_equal 5, stat[:size]
      assert_equal File.stat(file.path).ino, stat[:ino]
      assert_in_delta File.mtime(file.path).to_f, stat[:mtime], 0.001
      assert_raises(Errno::ENOENT) { machine.statx("/nonexistent/file") }
      assert_raises(Errno::ENOENT) { machine.open("/nonexistent/file", File::RDONLY) }
    end
  end

  def test_close_an_io
    machine.close(@w)
    assert @w.closed?
  end

  def test_poll
    assert_equal IO::WRITABLE, machine.poll(@w, IO::WRITABLE) & IO::WRITABLE
    poller = machine.spin { machine.poll(@r, IO::READABLE) }
    machine.snooze
    @w << "x"
    assert_equal IO::READABLE, machine.join(poller) & IO::READABLE
  end

  def test_splice_and_tee
    r2, w2 = IO.pipe
    r3, w3 = IO.pipe
    @w << "spliced"
    assert_equal 7, machine.tee(@r, w3, 100)
    assert_equal 7, machine.splice(@r, w2, 100)
    assert_equal "spliced", r2.read_nonblock(100)
    assert_equal "spliced", r3.read_nonblock(100)
    assert_equal 2, machine.metrics[:ops].values_at(:splice, :tee).sum
  ensure
    [r2, w2, r3, w3].each { |io| io&.close }
  end

  def test_read_each_yields_chunks_until_eof
    writer = machine.spin do
      3.times { |i| machine.write(@w, "chunk#{i}"); machine.sleep(0.005) }
      @w.close
    end
    chunks = []
    machine.read_each(@r) { |chunk| chunks << chunk }
    machine.join(writer)
    assert_equal "chunk0chunk1chunk2", chunks.join
  end

  def test_read_each_stops_on_break
    @w << "data"
    result = machine.read_each(@r) { |chunk| break chunk }
    assert_equal "data", result
    @w << "more"
    assert_equal "more", @r.read_nonblock(10)
  end
end
