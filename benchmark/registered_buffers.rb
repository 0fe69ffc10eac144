# frozen_string_literal: true

# Reads into IO::Buffers under UringMachine::Scheduler, 4 KiB and 64 KiB at a time:
#   plain       an ordinary IO::Buffer: a direct preadv2/read when data is there, else READ
#   registered  the same buffer registered with the ring: every read is a READ_FIXED op
# Workloads: 16 fibers x random-offset IO::Buffer#pread on a 64 MiB file in the page cache,
# and 16 UNIX socket pairs where a writer fiber sends and a reader fiber IO::Buffer#reads.
# One op = one read; CPU is user + system of the whole process.
require "uring_machine"
require "socket"
require "tmpdir"
require_relative "harness"

Warning[:experimental] = false

class RegisteredBuffersBench
  FIBERS = 16
  FILE_SIZE = 64 << 20
  BYTES_PER_FIBER = Bench.scaled(16 << 20)
  NEW_BUFFER_API = Gem::Version.new(RUBY_VERSION) >= Gem::Version.new("3.2")

  def run
    Dir.mktmpdir("um-bench-fixed") do |dir|
      path = File.join(dir, "data")
      File.open(path, "wb") { |f| (FILE_SIZE >> 20).times { |i| f.write(Random.new(i).bytes(1 << 20)) } }
      File.binread(path) # into the page cache
      [4096, 65_536].each do |size|
        compare("file pread #{size / 1024} KiB", size) { |buffers| file_reads(path, buffers, size) }
        compare("socket read #{size / 1024} KiB", size) { |buffers| socket_reads(buffers, size) }
      end
    end
  end

  private

  def compare(title, size, &workload)
    modes = %w[plain registered].to_h do |mode|
      [mode, ->(_) { on_scheduler { |scheduler| workload.call(buffers(scheduler, size, mode == "registered")) } }]
    end
    results = Bench.run(modes, setup: -> {}, teardown: ->(_) {})
    puts "\n#{title}: #{FIBERS} fibers x #{BYTES_PER_FIBER >> 20} MiB, best of #{Bench::RUNS}"
    puts format("%-11s %8s %8s %8s %12s %12s  %s", "mode", "wall s", "cpu s", "reads", "reads/s", "cpu ns/read",
                "ring ops")
    results.each_value do |r|
      reads, ops = r.value
      puts format("%-11s %8.3f %8.3f %8d %12.0f %12.0f  %s", r.mode, r.wall, r.cpu, reads, reads / r.wall,
                  r.cpu * 1e9 / reads, ops)
    end
  end

  def buffers(scheduler, size, register)
    buffers = Array.new(FIBERS) { IO::Buffer.new(size) }
    scheduler.register_buffers(buffers) if register
    buffers
  end

  # [reads made, the ring ops behind them]
  def on_scheduler
    Thread.new do
      scheduler = UringMachine::Scheduler.new
      Fiber.set_scheduler(scheduler)
      @reads = 0
      yield scheduler
      Fiber.set_scheduler(nil)
      scheduler.unregister_buffers
      [@reads, scheduler.machine.metrics[:ops].slice(:read, :read_fixed, :poll_add)]
    end.value
  end

  def file_reads(path, buffers, size)
    reads = BYTES_PER_FIBER / size
    buffers.each_with_index do |buffer, i|
      Fiber.schedule do
        random = Random.new(i)
        File.open(path, "rb") do |file|
          reads.times do
            from = random.rand(FILE_SIZE / size) * size
            n = NEW_BUFFER_API ? buffer.pread(file, from, size) : buffer.pread(file, size, from)
            raise "short read #{n}" unless n == size

            @reads += 1
          end
        end
      end
    end
  end

  def socket_reads(buffers, size)
    chunk = "x" * size
    buffers.each do |buffer|
      reader, writer = UNIXSocket.pair
      Fiber.schedule do
        (BYTES_PER_FIBER / size).times { writer.write(chunk) }
        writer.close
      end
      Fiber.schedule do
        total = 0
        while total < BYTES_PER_FIBER
          total += buffer.read(reader, 1)
          @reads += 1
        end
        reader.close
      end
    end
  end
end

RegisteredBuffersBench.new.run if $PROGRAM_NAME == __FILE__
