# frozen_string_literal: true

# IO.copy_stream of 1 GiB (x BENCH_SCALE) in three shapes: file -> TCP socket, file -> pipe,
# TCP socket -> TCP socket. The far ends are `cat` processes (feeding or draining), the same
# for every mode:
#   blocking        CRuby's copy_stream with no scheduler (sendfile / read+write)
#   scheduler       under UringMachine::Scheduler: io_splice (SPLICE ops), a ticker fiber beside
#   sched-no-splice the same scheduler without io_splice: CRuby's own copy_stream under it
# The ticker fiber counts 1 ms sleeps while the copy runs: 0 means the event loop was blocked.
require "uring_machine"
require "socket"
require "tmpdir"
require_relative "harness"

class CopyStreamBench
  SIZE = Bench.scaled(1 << 30)

  # CRuby's copy_stream under our scheduler: without io_splice, CopyStream steps aside.
  class SchedulerWithoutSplice < UringMachine::Scheduler
    undef_method :io_splice
  end

  def initialize
    @dir = Dir.mktmpdir("um-bench-copy")
    @file = File.join(@dir, "source")
    File.open(@file, "wb") do |f|
      chunk = Random.new(1).bytes(1 << 20)
      (SIZE >> 20).times { f.write(chunk) }
      f.write(chunk.byteslice(0, SIZE & ((1 << 20) - 1)))
    end
  end

  def run
    puts "copy_stream: #{SIZE >> 20} MiB per copy, best of #{Bench::RUNS}"
    shapes.each do |shape, (setup, copy)|
      results = Bench.run(modes(copy), setup: setup, teardown: method(:teardown))
      puts "\n#{shape}"
      report(results)
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
                                     ->(f) { IO.copy_stream(f[:src], f[:dst]) }]
    }
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
      Fiber.schedule do
        ticks = 0
        (ticks += 1; sleep 0.001) while copying
      end
      Fiber.schedule do
        copied = copy.call(fixture)
        copying = false
      end
      Fiber.set_scheduler(nil)
      finish(fixture, copied, ticks)
    end.value
  end

  # Closes the copy's ends, so the cat processes see EOF, and checks what they report.
  def finish(fixture, copied, ticks)
    raise "copied #{copied} bytes, expected #{SIZE}" unless copied == SIZE

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

  def report(results)
    base = results.fetch("blocking")
    puts format("%-16s %8s %8s %9s %10s %8s", "mode", "wall s", "cpu s", "wall/base", "MiB/s", "ticks")
    results.each_value do |r|
      puts format("%-16s %8.3f %8.3f %9.2f %10.0f %8s", r.mode, r.wall, r.cpu, r.wall / base.wall,
                  SIZE / r.wall / (1 << 20), r.value.nil? ? "-" : r.value)
    end
  end
end

CopyStreamBench.new.run if $PROGRAM_NAME == __FILE__
