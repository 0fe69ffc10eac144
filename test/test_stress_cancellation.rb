# frozen_string_literal: true

require_relative "scheduler_helper"
require "timeout"

# Fuzzed cancellation: reads, writes and accepts, through the Machine API and under the
# scheduler, interrupted at random moments (Machine#schedule with an exception, Fiber#raise, a
# timeout around the op), with GC.compact now and then. Asserts that no byte is lost or
# duplicated (each stream is read back exactly as written, in order), that a cancelled read
# never writes into its buffer later, that no connection is lost and that no fd leaks.
#
# A few seconds by default; UM_STRESS=10 runs ten times as much. UM_STRESS_SEED=n replays a
# run: the seed is in every failure message.
class TestStressCancellation < SchedulerTest
  Chaos = Class.new(StandardError)

  SCALE = Integer(ENV.fetch("UM_STRESS", "1"))
  SEED = Integer(ENV.fetch("UM_STRESS_SEED", Random.new_seed.to_s)) % (2**32)
  SENTINEL = "#" * 32

  def setup
    super
    # Said before the run, not only after a failure: a crash (an abort in the allocator, a
    # [BUG]) ends the process before teardown could say it.
    warn "\n#{name}: #{seed_note}" if ENV["CI"]
    @rng = Random.new(SEED)
    @compact = compaction_supported?
    GC.start # IOs earlier tests dropped are closed now, not during this one
    @fds_before = open_fd_count
  end

  def teardown
    GC.start
    assert_operator open_fd_count, :<=, @fds_before, "file descriptors leaked (#{seed_note})"
    warn "\n#{name} failed with #{seed_note}" unless passed?
    super
  end

  def seed_note
    "UM_STRESS_SEED=#{SEED}"
  end

  def open_fd_count
    Dir.children("/proc/self/fd").size
  end

  def compaction_supported?
    return false unless GC.respond_to?(:compact)

    GC.compact
    true
  rescue NotImplementedError
    false
  end

  def maybe_compact
    GC.compact if @compact && @rng.rand(8).zero?
  end

  # Stream +i+'s bytes.
  def payload(index, size)
    Random.new(SEED + index).bytes(size)
  end

  # A chaos fiber's choice of interrupt for +fiber+ (nil: let it be this time).
  def interrupt(machine, fiber)
    return unless fiber.alive?

    case @rng.rand(3)
    when 0 then machine.schedule(fiber, Chaos.new("scheduled"))
    when 1 then fiber.raise(Chaos, "raised")
    end
  rescue FiberError
    nil # not started yet, or finished meanwhile
  end

  # Runs +op+ under a short random timeout one time in three.
  def maybe_timeout(machine)
    return yield unless @rng.rand(3).zero?

    machine.timeout(@rng.rand * 0.0005, Chaos) { yield }
  end

  # ---- the Machine API ----

  def test_machine_streams_and_accepts_under_random_interrupts
    skip_note = @compact ? nil : "GC.compact is not supported here: running without it"
    warn "\n#{name}: #{skip_note}" if skip_note
    machine = UringMachine::Machine.new
    # The ring's own fds stay open until GC frees the Machine, which a conservative stack scan
    # can put off past teardown: they are not this test's leak.
    @fds_before = open_fd_count
    streams = Array.new(4) { IO.pipe }
    size = 640_000 * SCALE
    received = Array.new(streams.size) { +"".b }
    cancelled_buffers = []
    workers = []
    streams.each_with_index do |(r, w), i|
      data = payload(i, size)
      workers << machine.spin do
        pos = 0
        while pos < size
          chunk = data.byteslice(pos, @rng.rand(1..4096))
          begin
            machine.snooze if @rng.rand(3).zero? # a wait where a pending interrupt may arrive
            pos += maybe_timeout(machine) { machine.write(w, chunk) }
          rescue Chaos
            nil # nothing of this call was written
          end
        end
        w.close
      end
      workers << machine.spin do
        loop do
          buffer = cancelled_buffers.empty? || @rng.rand(2).zero? ? SENTINEL.dup : cancelled_buffers.shift.first
          begin
            machine.snooze if @rng.rand(3).zero?
            n = maybe_timeout(machine) { machine.read(r, buffer, @rng.rand(1..8192)) }
            break if n.zero?

            received[i] << buffer.byteslice(0, n)
          rescue Chaos
            assert_equal SENTINEL, buffer, "a cancelled read wrote into its buffer (#{seed_note})"
            cancelled_buffers << [buffer, SENTINEL.dup]
          end
        end
        r.close
      end
    end
    server = TCPServer.new("127.0.0.1", 0)
    port = server.local_address.ip_port
    connections = 100 * SCALE
    clients = []
    accepted = []
    workers << machine.spin do
      while clients.size < connections
        begin
          clients << TCPSocket.new("127.0.0.1", port)
          machine.sleep(0.0002)
        rescue Chaos
          nil
        end
      end
    end
    workers << machine.spin do
      while accepted.size < connections
        begin
          if @rng.rand(2).zero?
            accepted << maybe_timeout(machine) { machine.accept(server) }
          else
            maybe_timeout(machine) do
              machine.accept_each(server) do |fd|
                accepted << fd
                break if accepted.size >= connections
              end
            end
          end
        rescue Chaos
          nil
        end
      end
    end
    chaos = machine.spin do
      while workers.any?(&:alive?)
        @rng.rand(10).zero? ? machine.sleep(@rng.rand * 0.0002) : machine.snooze
        interrupt(machine, workers.sample(random: @rng))
        maybe_compact
        cancelled_buffers.each do |buffer, expected|
          assert_equal expected, buffer, "a cancelled read wrote into its buffer later (#{seed_note})"
        end
      end
    end
    machine.join(*workers)
    machine.join(chaos)
    streams.each_index do |i|
      assert received[i] == payload(i, size), "stream #{i}: #{received[i].bytesize} of #{size} bytes, " \
                                              "first difference at #{first_difference(received[i], payload(i, size))} (#{seed_note})"
    end
    assert_equal connections, accepted.size, "every connection accepted once (#{seed_note})"
    assert_equal :wait_readable, server.accept_nonblock(exception: false), "none left behind (#{seed_note})"
    assert_equal accepted.size, accepted.uniq.size
    accepted.each { |fd| machine.close(fd) }
  ensure
    clients&.each(&:close)
    server&.close
    streams&.flatten&.each { |io| io.close unless io.closed? }
  end

  def first_difference(got, want)
    (0...[got.bytesize, want.bytesize].min).find { |k| got.getbyte(k) != want.getbyte(k) } || [got.bytesize, want.bytesize].min
  end

  # ---- under the scheduler ----

  def test_scheduler_streams_under_random_interrupts
    size = 640_000 * SCALE
    count = 4
    received = with_scheduler do |scheduler|
      machine = scheduler.machine
      received = Array.new(count) { +"".b }
      workers = []
      count.times do |i|
        r, w = IO.pipe
        data = payload(100 + i, size)
        workers << Fiber.schedule do
          pos = 0
          while pos < size
            chunk = data.byteslice(pos, @rng.rand(1..4096))
            begin
              machine.snooze if @rng.rand(3).zero?
              pos += scheduler_timeout { w.syswrite(chunk) }
            rescue Chaos
              nil
            end
          end
        rescue Chaos
          retry
        ensure
          close_amid_chaos(w)
        end
        workers << Fiber.schedule do
          loop do
            machine.snooze if @rng.rand(3).zero?
            received[i] << scheduler_timeout { r.sysread(@rng.rand(1..8192)) }
          rescue Chaos
            nil
          rescue EOFError
            break
          end
        ensure
          close_amid_chaos(r)
        end
      end
      Fiber.schedule do
        while workers.any?(&:alive?)
          @rng.rand(10).zero? ? sleep(@rng.rand * 0.0002) : machine.snooze
          interrupt(machine, workers.sample(random: @rng))
          maybe_compact
        end
      end
      Fiber.set_scheduler(nil)
      received
    end
    count.times do |i|
      want = payload(100 + i, size)
      assert received[i] == want, "stream #{i}: #{received[i].bytesize} of #{size} bytes, " \
                                  "first difference at #{first_difference(received[i], want)} (#{seed_note})"
    end
  end

  # Ruby 3.4+ runs IO#close on a worker thread (blocking_operation_wait), a wait like any
  # other: an interrupt may arrive there, once the close is done.
  def close_amid_chaos(io)
    io.close
  rescue Chaos
    retry unless io.closed?
  end

  def scheduler_timeout(&block)
    return yield unless @rng.rand(3).zero?

    Timeout.timeout(@rng.rand * 0.0005, Chaos, &block)
  end
end
