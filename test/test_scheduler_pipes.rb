# frozen_string_literal: true

require_relative "scheduler_helper"

class TestSchedulerPipes < SchedulerTest
  BIG = 64 * 1024 * 1024

  def test_read_with_length_waits_for_all_of_it
    got = with_scheduler do
      with_pipe do |r, w|
        got = nil
        schedule_fiber { got = r.read(11) }
        schedule_fiber do
          w.write("hello")
          sleep 0.01
          w.write(" world and more")
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal "hello world", got
  end

  def test_read_to_eof_and_eof_results
    results = with_scheduler do
      with_pipe do |r, w|
        results = {}
        schedule_fiber do
          results[:all] = r.read
          results[:read_n] = r.read(1)
          results[:read_all_again] = r.read
          results[:eof] = r.eof?
          results[:readpartial] = assert_raises(EOFError) { r.readpartial(10) }
        end
        schedule_fiber do
          3.times do |i|
            w.write("part#{i};")
            sleep 0.002
          end
          w.close
        end
        Fiber.set_scheduler(nil)
        results
      end
    end
    assert_equal "part0;part1;part2;", results[:all]
    assert_nil results[:read_n]
    assert_equal "", results[:read_all_again]
    assert results[:eof]
  end

  def test_readpartial_returns_what_is_available
    chunks = with_scheduler do
      with_pipe do |r, w|
        chunks = []
        schedule_fiber do
          chunks << r.readpartial(100)
          chunks << r.readpartial(100)
        end
        schedule_fiber do
          w.write("abc")
          sleep 0.01
          w.write("defg")
        end
        Fiber.set_scheduler(nil)
        chunks
      end
    end
    assert_equal %w[abc defg], chunks
  end

  def test_readpartial_into_a_buffer
    buffer = with_scheduler do
      with_pipe do |r, w|
        buffer = +"previous contents"
        schedule_fiber { r.readpartial(10, buffer) }
        schedule_fiber { w.write("xyz") }
        Fiber.set_scheduler(nil)
        buffer
      end
    end
    assert_equal "xyz", buffer
  end

  def test_gets_and_each_line
    lines, first = with_scheduler do
      with_pipe do |r, w|
        lines = []
        first = nil
        schedule_fiber do
          first = r.gets
          r.each_line { |line| lines << line }
        end
        schedule_fiber do
          w.write("line 1\nli")
          sleep 0.005
          w.write("ne 2\nline 3\n")
          sleep 0.005
          w.write("no newline")
          w.close
        end
        Fiber.set_scheduler(nil)
        [lines, first]
      end
    end
    assert_equal "line 1\n", first
    assert_equal ["line 2\n", "line 3\n", "no newline"], lines
  end

  def test_read_nonblock
    result = with_scheduler do
      with_pipe do |r, w|
        result = {}
        schedule_fiber do
          result[:empty] = r.read_nonblock(10, exception: false)
          result[:raises] = assert_raises(IO::WaitReadable) { r.read_nonblock(10) }
          result[:wait] = r.wait_readable(5)
          result[:data] = r.read_nonblock(10)
        end
        schedule_fiber do
          sleep 0.005
          w.write("nb")
        end
        Fiber.set_scheduler(nil)
        result.merge(r: r)
      end
    end
    assert_equal :wait_readable, result[:empty]
    assert_same result[:r], result[:wait]
    assert_equal "nb", result[:data]
  end

  def test_write_puts_print_and_append
    got = with_scheduler do
      with_pipe do |r, w|
        got = nil
        schedule_fiber { got = r.read }
        schedule_fiber do
          w.write("a", "b")
          w.puts "c", "d"
          w.print "e"
          w << "f" << 1
          w.printf("%03d", 7)
          w.close
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal "abc\nd\nef1007", got
  end

  def test_sysread_and_syswrite
    got = with_scheduler do
      with_pipe do |r, w|
        got = []
        schedule_fiber do
          got << r.sysread(5)
          got << r.sysread(100)
          got << assert_raises(EOFError) { r.sysread(1) }.class
        end
        schedule_fiber do
          sleep 0.002
          got << w.syswrite("hello")
          sleep 0.002
          w.syswrite("rest")
          w.close
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal [5, "hello", "rest", EOFError], got
  end

  def test_ping_pong_between_fibers
    count = with_scheduler do
      a_r, a_w = IO.pipe
      b_r, b_w = IO.pipe
      count = 0
      schedule_fiber do
        500.times do |i|
          a_w.write("#{i}\n")
          count += 1 if b_r.gets == "#{i + 1}\n"
        end
      end
      schedule_fiber { 500.times { b_w.write("#{Integer(a_r.gets) + 1}\n") } }
      Fiber.set_scheduler(nil)
      [a_r, a_w, b_r, b_w].each(&:close)
      count
    end
    assert_equal 500, count
  end

  def test_large_transfer_in_one_write_and_chunked_reads
    data = Random.new(1).bytes(BIG)
    digest, size = with_scheduler do
      with_pipe do |r, w|
        sha = Digest::SHA256.new
        size = 0
        schedule_fiber do
          loop do
            chunk = r.readpartial(256 * 1024)
            sha << chunk
            size += chunk.bytesize
          end
        rescue EOFError
          nil
        end
        schedule_fiber do
          w.write(data)
          w.close
        end
        Fiber.set_scheduler(nil)
        [sha.hexdigest, size]
      end
    end
    assert_equal BIG, size
    assert_equal Digest::SHA256.hexdigest(data), digest
  end

  def test_large_transfer_in_chunked_writes_and_one_read
    digest, expected = with_scheduler do
      with_pipe do |r, w|
        got = nil
        expected = Digest::SHA256.new
        schedule_fiber { got = r.read }
        schedule_fiber do
          random = Random.new(2)
          64.times do
            chunk = random.bytes(1024 * 1024)
            expected << chunk
            w.write(chunk)
          end
          w.close
        end
        Fiber.set_scheduler(nil)
        assert_equal BIG, got.bytesize
        [Digest::SHA256.hexdigest(got), expected.hexdigest]
      end
    end
    assert_equal expected, digest
  end

  def test_large_transfers_on_many_pipes_at_once
    results = with_scheduler do
      (1..8).map do |seed|
        r, w = IO.pipe
        result = {}
        schedule_fiber do
          result[:got] = Digest::SHA256.hexdigest(r.read)
          r.close
        end
        schedule_fiber do
          data = Random.new(seed).bytes(4 * 1024 * 1024)
          result[:sent] = Digest::SHA256.hexdigest(data)
          w.write(data)
          w.close
        end
        result
      end
    end
    results.each { |result| assert_equal result[:sent], result[:got] }
  end

  def test_epipe_when_the_reader_is_closed
    error = with_scheduler do
      with_pipe do |r, w|
        r.close
        error = nil
        schedule_fiber { error = assert_raises(Errno::EPIPE) { w.write("nobody listens") } }
        Fiber.set_scheduler(nil)
        error
      end
    end
    assert_kind_of Errno::EPIPE, error
  end

  def test_epipe_for_a_writer_blocked_on_a_full_pipe
    results = with_scheduler do
      with_pipe do |r, w|
        results = {}
        schedule_fiber do
          w.write("x" * (4 * 1024 * 1024)) # more than the pipe holds: waits for the reader
          results[:wrote] = true
        rescue Errno::EPIPE => e
          results[:error] = e
        end
        schedule_fiber do
          results[:read] = r.read(1024)
          r.close
        end
        Fiber.set_scheduler(nil)
        results
      end
    end
    assert_equal 1024, results[:read].bytesize
    refute results[:wrote], "the write cannot complete once the reader closed"
    assert_kind_of Errno::EPIPE, results[:error]
  end

  def test_other_fibers_run_while_a_read_waits
    ticks, got = with_scheduler do
      with_pipe do |r, w|
        ticks = 0
        got = nil
        schedule_fiber { got = r.read(4) }
        schedule_fiber do
          5.times do
            sleep 0.002
            ticks += 1
          end
          w.write("done")
        end
        Fiber.set_scheduler(nil)
        [ticks, got]
      end
    end
    assert_equal 5, ticks
    assert_equal "done", got
  end
end
