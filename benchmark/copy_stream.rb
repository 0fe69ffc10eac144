# frozen_string_literal: true

# IO.copy_stream of 1 GiB (x BENCH_SCALE) in three shapes: file -> TCP socket, file -> pipe,
# TCP socket -> TCP socket, the far ends `cat` processes (feeding or draining), the same for
# every mode; and 256 MiB (x BENCH_SCALE) file -> file in the page cache, as a whole file, a
# length from the position, and a length from an unaligned offset. The modes:
#   blocking        CRuby's copy_stream with no scheduler (copy_file_range / sendfile / read+write)
#   scheduler       under UringMachine::Scheduler: io_splice (SPLICE ops, copy_file_range file to
#                   file, reads and writes socket to socket), a ticker fiber beside
#   sched-no-splice the same scheduler without io_splice: CRuby's own copy_stream under it
# The ticker fiber counts 1 ms sleeps while the copy runs: 0 means the event loop was blocked.
require "uring_machine"
require "socket"
require "tmpdir"
require_relative "harness"

class CopyStreamBench
  SIZE = Bench.scaled(1 << 30)
  FILE_SIZE = Bench.scaled(1 << 28)
  # Where the offset shape starts reading: not a multiple of the page size.
  OFFSET = 12_345

  # CRuby's copy_stream under our scheduler: without io_splice, CopyStream steps aside.
  class SchedulerWithoutSplice < UringMachine::Scheduler
    undef_method :io_splice
  end

  def initialize
    @dir = Dir.mktmpdir("um-bench-copy")
    @file = File.join(@dir, "source")
    @small_file = File.join(@dir, "source-small")
    @dst_file = File.join(@dir, "destination")
    write_random(@file, SIZE)
    write_random(@small_file, FILE_SIZE)
  end

  def run
    puts "copy_stream: #{SIZE >> 20} MiB per copy (file -> file: #{FILE_SIZE >> 20} MiB), best of #{Bench::RUNS}"
    shapes.each do |shape, (setup, copy)|
      results = Bench.run(modes(copy), setup: setup, teardown: method(:teardown))
      puts "\n#{shape}"
      report(results, shape.start_with?("file -> file") ? FILE_SIZE : SIZE)
    end
  ensure
    FileUtils.remove_entry(@dir)
  end

  private

  # name => [fixture setup, copy(fixture) on the fixture's source and destination]
  def shapes
    {
      "file -> TCP socket" => [-> { tcp_drain }, ->(f) { IO.copy_stream(@file, f[:dst]) }],
      "file -> pipe" => [-> { pipe_drain }, ->(f) { IO.copy_stream(@file, f[:dst]) }],
      "TCP socket -> TCP socket" => [-> { tcp_feed.merge(tcp_drain) { |_, a, b| a + b } },
                                     ->(f) { IO.copy_stream(f[:src], f[:dst]) }],
      "file -> file" => [-> { file_dst }, ->(f) { IO.copy_stream(@small_file, f[:dst]) }],
      "file -> file, length" => [-> { file_dst }, ->(f) { IO.copy_stream(f[:src], f[:dst], FILE_SIZE) }],
      "file -> file, offset + length" => [-> { file_dst },
                                          ->(f) { IO.copy_stream(f[:src], f[:dst], FILE_SIZE, OFFSET) }]
    }
  end

  def write_random(path, size)
    File.open(path, "wb") do |f|
      chunk = Random.new(1).bytes(1 << 20)
      (size >> 20).times { f.write(chunk) }
      f.write(chunk.byteslice(0, size & ((1 << 20) - 1)))
    end
  end

  def modes(copy)
    {
      "blocking" => ->(f) { finish(f, Thread.new { copy.call(f) }.value, nil) },
      "scheduler" => ->(f) { on(UringMachine::Scheduler, f, copy) },
      "sched-no-splice" => ->(f) { on(SchedulerWithoutSplice, f, copy) }
    }
  end

  def on(scheduler_class, fixture, copy)
    Thread.new do
      Fiber.set_scheduler(scheduler_class.new)
      copied = ticks = nil
      copying = true
      ticker = Fiber.schedule do
        ticks = 0
        (ticks += 1; sleep 0.001) while copying
      end
      Fiber.schedule do
        copied = copy.call(fixture)
        copying = false
        ticker.stop # not its last sleep's rest: the blocking mode has nothing to wait for
      end
      Fiber.set_scheduler(nil)
      finish(fixture, copied, ticks)
    end.value
  end

  # Closes the copy's ends, so the cat processes see EOF, and checks what they report.
  def finish(fixture, copied, ticks)
    expected = fixture.fetch(:size, SIZE)
    raise "copied #{copied} bytes, expected #{expected}" unless copied == expected

    fixture[:dst].close
    fixture[:src]&.close
    statuses = fixture[:pids].map { |pid| Process.wait2(pid).last }
    raise "a cat process failed: #{statuses.inspect}" unless statuses.all?(&:success?)

    ticks
  end

  def teardown(fixture)
    [fixture[:dst], fixture[:src]].compact.each { |io| io.close unless io.closed? }
    fixture[:pids].each do |pid|
      Process.kill(:KILL, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
  end

  # A new destination file; the 1 GiB source open at its start for the shapes that copy a
  # length of it (it stays in the page cache between runs). The last run's destination is
  # removed, not truncated (ext4 starts writing back a file rewritten after a truncate when it
  # is closed, inside the next timed run), and everything dirty is written first, so that each
  # run starts from the same state whatever the mode before it left behind.
  def file_dst
    FileUtils.rm_f(@dst_file)
    system("sync", exception: true)
    { src: File.open(@file, "rb"), dst: File.open(@dst_file, "wb"), pids: [], size: FILE_SIZE }
  end

  def pipe_drain
    r, w = IO.pipe
    pid = spawn("cat", in: r, out: File::NULL)
    r.close
    { dst: w, pids: [pid] }
  end

  def tcp_drain
    ours, theirs = tcp_connection
    { dst: ours, pids: [spawn("cat", in: theirs, out: File::NULL)] }.tap { theirs.close }
  end

  def tcp_feed
    ours, theirs = tcp_connection
    { src: ours, pids: [spawn("cat", @file, out: theirs)] }.tap { theirs.close }
  end

  # Both ends of a loopback TCP connection.
  def tcp_connection
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    [client, server.accept].tap { server.close }
  end

  def report(results, size)
    base = results.fetch("blocking")
    puts format("%-16s %8s %8s %9s %10s %8s", "mode", "wall s", "cpu s", "wall/base", "MiB/s", "ticks")
    results.each_value do |r|
      puts format("%-16s %8.3f %8.3f %9.2f %10.0f %8s", r.mode, r.wall, r.cpu, r.wall / base.wall,
                  size / r.wall / (1 << 20), r.value.nil? ? "-" : r.value)
    end
  end
end

CopyStreamBench.new.run if $PROGRAM_NAME == __FILE__
