# frozen_string_literal: true

require_relative "scheduler_helper"
require_relative "support/child_ruby"

# Closing an IO that fibers wait on wakes them with IOError (their ops cancelled and drained
# first), on every Ruby; Scheduler#io_close closes through the ring.
class TestSchedulerIOClose < SchedulerTest
  def open_fds
    Dir.children("/proc/self/fd").size
  end

  def fd_open?(fd)
    File.exist?("/proc/self/fd/#{fd}")
  end

  # Schedules a fiber running the block, which must raise IOError once the IO it waits on is
  # closed; returns a Hash that gets :error (and :after, the time it took).
  def expect_ioerror(&block)
    outcome = {}
    start = monotonic
    schedule_fiber do
      block.call
      outcome[:error] = :none
    rescue IOError => e
      outcome[:error] = e
      outcome[:after] = monotonic - start
    end
    outcome
  end

  def assert_woken_by_close(outcome)
    assert_kind_of IOError, outcome[:error], "the waiting fiber was not woken with IOError"
    assert_match(/stream closed/, outcome[:error].message)
    assert_operator outcome[:after], :<, 5, "woken by the close, not by some timeout"
  end

  def fill_pipe(w)
    w.write_nonblock("x" * 65_536) while true # rubocop:disable Style/InfiniteLoop
  rescue IO::WaitWritable
    nil
  end

  def test_close_during_a_pending_read
    got = with_scheduler do
      Fiber.scheduler.machine # the ring and its eventfd are open before counting
      before = open_fds
      r, w = IO.pipe
      reading = expect_ioerror { r.read(10) } # parked in the ring now
      fd = r.fileno
      r.close
      Fiber.set_scheduler(nil)
      w.close
      { reading: reading, fd_open: fd_open?(fd), leaked: open_fds - before }
    end
    assert_woken_by_close(got[:reading])
    refute got[:fd_open]
    assert_operator got[:leaked], :<=, 0, "descriptors leaked" # GC may close others meanwhile
  end

  def test_close_during_a_write_to_a_full_pipe
    outcome = with_scheduler do
      r, w = IO.pipe
      fill_pipe(w)
      writing = expect_ioerror { w.write("y" * 100_000) }
      w.close
      Fiber.set_scheduler(nil)
      r.close
      writing
    end
    assert_woken_by_close(outcome)
  end

  def test_close_during_accept
    got = with_scheduler do
      Fiber.scheduler.machine # the ring and its eventfd are open before counting
      before = open_fds
      server = TCPServer.new("127.0.0.1", 0)
      port = server.local_address.ip_port
      accepting = expect_ioerror { server.accept }
      server.close
      Fiber.set_scheduler(nil)
      refused = assert_raises(Errno::ECONNREFUSED) { TCPSocket.new("127.0.0.1", port) }
      { accepting: accepting, refused: refused, leaked: open_fds - before }
    end
    assert_woken_by_close(got[:accepting])
    assert_kind_of Errno::ECONNREFUSED, got[:refused], "nobody listens on the port any more"
    assert_operator got[:leaked], :<=, 0, "descriptors leaked" # GC may close others meanwhile
  end

  def test_close_during_io_select
    outcome = with_scheduler do
      r, w = IO.pipe
      selecting = expect_ioerror { IO.select([r], nil, nil, 10) }
      r.close
      Fiber.set_scheduler(nil)
      w.close
      selecting
    end
    assert_woken_by_close(outcome)
  end

  def test_close_during_wait_readable_with_and_without_timeout
    outcomes = with_scheduler do
      r, w = IO.pipe
      outcomes = [expect_ioerror { r.wait_readable(10) }, expect_ioerror { r.wait_readable }]
      r.close
      Fiber.set_scheduler(nil)
      w.close
      outcomes
    end
    outcomes.each { |outcome| assert_woken_by_close(outcome) }
  end

  def test_a_close_wakes_only_the_waiters_of_that_io_and_the_scheduler_goes_on
    got = with_scheduler do
      r1, w1 = IO.pipe
      r2, w2 = IO.pipe
      got = { closed: expect_ioerror { r1.read(5) }, other: nil }
      schedule_fiber { got[:other] = r2.read(5) }
      r1.close
      schedule_fiber { w2.write("fine!") }
      Fiber.set_scheduler(nil)
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      schedule_fiber { got[:roundtrip] = pipe_roundtrip }
      [w1, r2, w2].each(&:close)
      got
    end
    assert_woken_by_close(got[:closed])
    assert_equal "fine!", got[:other]
    assert_equal "still alive", got[:roundtrip]
  end

  def test_closing_an_io_that_does_not_own_the_descriptor_wakes_nobody
    got = with_scheduler do
      r, w = IO.pipe
      got = {}
      schedule_fiber { got[:read] = r.read(5) }
      IO.for_fd(r.fileno, autoclose: false).close # the descriptor stays open
      schedule_fiber { w.write("still") }
      Fiber.set_scheduler(nil)
      [r, w].each(&:close)
      got
    end
    assert_equal "still", got[:read]
  end

  def test_close_read_and_close_write_of_simplex_ios
    outcomes = with_scheduler do
      r, w = IO.pipe
      reading = expect_ioerror { r.read(1) }
      r.close_read
      r2, w2 = IO.pipe
      fill_pipe(w2)
      writing = expect_ioerror { w2.write("z" * 100_000) }
      w2.close_write
      Fiber.set_scheduler(nil)
      [w, r2].each(&:close)
      [reading, writing]
    end
    outcomes.each { |outcome| assert_woken_by_close(outcome) }
  end

  def test_scheduler_io_close_wakes_waiters_and_closes_through_the_ring
    got = with_scheduler do |scheduler|
      r, w = IO.pipe
      reading = expect_ioerror { r.read(10) }
      fd = r.fileno
      got = { reading: reading }
      got[:ring_closes] = ring_ops_during(scheduler) { got[:returned] = scheduler.io_close(r) }.fetch(:close, 0)
      got[:ruby_closed] = r.closed?
      got[:fd_open] = fd_open?(fd)
      got[:again] = scheduler.io_close(r)
      Fiber.set_scheduler(nil)
      w.close
      got
    end
    assert_woken_by_close(got[:reading])
    assert_equal true, got[:returned]
    assert_equal 1, got[:ring_closes]
    assert got[:ruby_closed]
    refute got[:fd_open], "the descriptor is really closed"
    assert_equal true, got[:again], "closing a closed IO is fine, as IO#close"
  end

  def test_scheduler_io_close_flushes_buffered_writes_and_takes_integer_fds
    got = with_scheduler do |scheduler|
      r, w = IO.pipe
      w.sync = false
      w.write("buffered")
      got = {}
      schedule_fiber { got[:read] = r.read }
      scheduler.io_close(w)
      fd = IO.sysopen("/dev/null")
      got[:integer] = scheduler.io_close(fd)
      got[:integer_closed] = !fd_open?(fd)
      Fiber.set_scheduler(nil)
      r.close
      got
    end
    assert_equal "buffered", got[:read]
    assert_equal true, got[:integer]
    assert got[:integer_closed]
  end

  def test_scheduler_io_close_with_bad_input
    with_scheduler do |scheduler|
      assert_raises(TypeError) { scheduler.io_close("3") }
      assert_raises(TypeError) { scheduler.io_close(nil) }
      assert_raises(ArgumentError) { scheduler.io_close(-1) }
      assert_raises(Errno::EBADF) { scheduler.io_close(1_000_000) }
      [0, 1, 2].each do |fd|
        assert_equal true, scheduler.io_close(fd), "io_close(#{fd})"
        assert fd_open?(fd), "descriptor #{fd} stays open"
      end
      roundtrip = nil
      schedule_fiber { roundtrip = pipe_roundtrip }
      Fiber.set_scheduler(nil)
      assert_equal "still alive", roundtrip
    end
  end
  def test_close_from_another_thread_wakes_the_fiber_on_ruby_4
    skip "Ruby #{RUBY_VERSION} has no fiber_interrupt hook: a close from another thread wakes no fiber before 4.0" unless ruby_at_least?("4.0")

    # read(10) waits through CRuby's method and the io_read hook, readpartial on the fast
    # path (fast/wait.rs): both are recorded where Ruby 4.0's close looks.
    [->(io) { io.read(10) }, ->(io) { io.readpartial(10) }].each do |call|
      r, w = IO.pipe
      reading = nil
      outcome = with_scheduler do
        reading = expect_ioerror { call.call(r) }
        closer = Thread.new { r.close } # Ruby 4.0 calls fiber_interrupt from this thread
        Fiber.set_scheduler(nil)
        closer.join
        reading
      end
      assert_woken_by_close(outcome)
    ensure
      w&.close
    end
  end

  def test_fiber_interrupt_hook_raises_in_a_fiber_waiting_in_the_ring
    skip "fiber_interrupt is a Ruby 4.0+ hook" unless ruby_at_least?("4.0")

    got = with_scheduler do |scheduler|
      with_pipe do |r, _w|
        got = {}
        fiber = schedule_fiber do
          r.read(1)
        rescue IndexError => e
          got[:error] = e.message
        end
        scheduler.fiber_interrupt(fiber, IndexError.new("interrupted"))
        Fiber.set_scheduler(nil)
        got[:readable_after] = r.wait_readable(0)
        got
      end
    end
    assert_equal "interrupted", got[:error]
    assert_nil got[:readable_after], "the cancelled read took nothing"
  end
end


# The Machine API: Machine#close of an Integer fd wakes the fibers waiting on it.
class TestMachineClose < MachineTest
  def test_close_of_an_fd_wakes_its_reader
    r, w = IO.pipe
    fd = r.fileno
    r.autoclose = false
    reader = machine.spin { machine.read(fd, +"", 10) }
    machine.snooze # the reader waits in the ring now
    assert_equal fd, machine.close(fd)
    error = assert_raises(IOError) { machine.join(reader) }
    assert_match(/stream closed/, error.message)
    w.close
  end

  # A close that waits (Ruby 3.4 closes on a worker) must not interrupt an op that another
  # fiber started meanwhile on a new file with the same number: wake_fd_waiters(fd, serial).
  def test_wake_fd_waiters_spares_ops_started_after_the_close_began
    m = UringMachine.machine
    r, w = IO.pipe
    serial = UringMachine.__op_serial__
    reader = m.spin { m.read(r, +"", 10) }
    m.snooze # the reader waits in the ring now
    assert_equal 0, UringMachine.wake_fd_waiters(r.fileno, serial), "started after the serial"
    w << "ok"
    assert_equal 2, m.join(reader)
    reader = m.spin { m.read(r, +"", 10) }
    m.snooze
    assert_equal 1, UringMachine.wake_fd_waiters(r.fileno, UringMachine.__op_serial__)
    assert_raises(IOError) { m.join(reader) }
  ensure
    [r, w].each { |io| io&.close }
  end
end

# CRuby frees an IO's read-ahead and write buffers (rbuf, wbuf) when the IO is closed, from
# whichever thread closes it, and on Ruby 3.x tells the fibers of no other thread: a fiber
# whose gets waited in the ring (io_fillbuf reads into rbuf through the io_read hook) had the
# kernel write into freed memory once bytes came ("malloc(): unsorted double linked list
# corrupted"). Those reads and writes go through memory the op owns now, and the fiber gets
# CRuby 4.0's IOError (4.0 ends such a read itself). In a child Ruby, so that a heap corruption
# fails this test rather than ending the run.
class TestCloseOnAnotherThread < Minitest::Test
  include ChildRuby::Assertions

  def test_a_read_into_the_ios_own_buffer_survives_a_close_on_another_thread
    report, = child_report("-e", <<~RUBY, limit: 60)
      require "uring_machine"
      require "json"
      outcomes = Array.new(20) do
        r, w = IO.pipe
        parked = Thread::Queue.new
        outcome = nil
        reader = Thread.new do
          Fiber.set_scheduler(UringMachine::Scheduler.new)
          Fiber.schedule do
            parked << true
            outcome = begin
              r.gets
            rescue IOError => e
              # CRuby's own words (3.3 and 3.4 say either, depending on when the close lands), or ours
              ["closed stream", "stream closed in another thread"].include?(e.message) ? "IOError" : e.message
            end
          end
        end
        parked.pop
        Thread.pass until reader.status == "sleep" # its fiber waits in the ring
        r.close
        begin
          w.write("data" * 3000 + "\\n") # lands in a read that was waiting before the close (3.x)
        rescue Errno::EPIPE
          nil # 4.0: CRuby's close ended that read, so the pipe has no reader left
        end
        joined = reader.join(10) ? :joined : :hung
        w.close
        GC.start
        Array.new(2000) { "x" * rand(1..3000) } # the allocator checks its lists
        [outcome, joined]
      end
      puts JSON.generate(outcomes.tally.to_a)
    RUBY
    assert_equal [[%w[IOError joined], 20]], report
  end
end
