# frozen_string_literal: true

require_relative "scheduler_helper"
require_relative "interrupted_writes_helper"
require "tempfile"
require "timeout"

# Under the scheduler too, a write that promises everything (IO#write, puts, print, the
# io_write hook, IO.copy_stream) writes everything or raises the interrupt there and then, the
# original exception carrying the count that went out (UringMachine::PartialWrite). CRuby's
# IO#write calls the io_write hook once per transfer, so the count spans every call. Every
# reader here reads only after the interrupt, so each write has to wait.
class TestSchedulerInterruptedWrites < SchedulerTest
  include InterruptedWritesHelper

  def teardown
    UringMachine.fast_io = true
    UringMachine.coalesce_writes = true
    super
  end

  # Under a fresh scheduler: +write+ in a fiber that parks (its peer reads nothing), then
  # +interrupt+ called with that fiber from another fiber; returns what the writer raised.
  def interrupt_parked_writer(interrupt, &write)
    with_scheduler do
      outcome = nil
      writer = Fiber.schedule do
        write.call
        outcome = :returned
      rescue Exception => e # rubocop:disable Lint/RescueException
        outcome = e
      end
      Fiber.schedule { interrupt.call(writer) }
      Fiber.set_scheduler(nil)
      outcome
    end
  end

  # Under a fresh scheduler: the block in a fiber under Timeout.timeout(0.05, *klass); the
  # exception that stopped the block (see stopping_exception).
  def under_timeout(*klass, &write)
    in_scheduled_fiber do
      Timeout.timeout(0.05, *klass, &write)
      :returned
    rescue Timeout::Error, *klass => e
      stopping_exception(e)
    end
  end

  # Timeout.timeout without a class: from the timeout gem of Ruby 3.4 on, the block is stopped
  # by the gem's internal Timeout::ExitException, which the gem replaces with a new
  # Timeout::Error outside the block; the exception that stopped the write is its cause.
  def stopping_exception(raised)
    exit_exception = defined?(Timeout::ExitException) && raised.cause.is_a?(Timeout::ExitException)
    exit_exception ? raised.cause : raised
  end

  # An interrupter that raises Stop into the writer once bytes have reached +reader+. A copy
  # may first wait for its source file's reads, where a timer could stop it before any byte
  # went out; this one stops it only after some did.
  def stop_once_readable(reader)
    lambda do |writer|
      reader.wait_readable
      writer.raise(Stop, "stop")
    end
  end

  def assert_timed_out(exception, message = nil)
    kinds = [Timeout::Error, (Timeout::ExitException if defined?(Timeout::ExitException))].compact
    assert kinds.any? { |kind| exception.is_a?(kind) }, "#{message} timed out: #{exception.inspect}".strip
  end

  # Yields a fresh pipe and the run's name twice: with +setting+ (:fast_io, :coalesce_writes)
  # on, then off.
  def each_path(setting = :fast_io)
    [true, false].each do |on|
      UringMachine.public_send(:"#{setting}=", on)
      with_pipe { |r, w| yield r, w, "#{setting} #{on}" }
    end
  end

  # Yields a file that holds +data+, positioned at its start.
  def with_source_file(data)
    Tempfile.create("copy") do |src|
      src.write(data)
      src.rewind
      yield src
    end
  end

  def test_io_write_under_timeout_raises_with_the_count
    each_path do |r, w, path|
      data = payload(pipe_capacity(w) * 3)
      raised = under_timeout { w.write(data) }
      assert_timed_out raised, path
      assert_stopped_write raised, data, drain(r)
    end
  end

  def test_io_write_under_timeout_with_a_class_raises_that_exception_with_the_count
    each_path do |r, w, path|
      data = payload(pipe_capacity(w) * 3)
      raised = under_timeout(Stop) { w.write(data) }
      assert_kind_of Stop, raised, path
      assert_stopped_write raised, data, drain(r)
    end
  end

  def test_io_write_stopped_by_fiber_raise
    each_path do |r, w, path|
      data = payload(pipe_capacity(w) * 3)
      raised = interrupt_parked_writer(->(f) { f.raise(Stop, "stop") }) { w.write(data) }
      assert_equal [Stop, "stop"], [raised.class, raised.message], path
      assert_stopped_write raised, data, drain(r)
    end
  end

  def test_socket_write_stopped_by_schedule_raises_the_same_exception
    [true, false].each do |fast|
      UringMachine.fast_io = fast
      a, b = UNIXSocket.pair
      data = payload(1 << 21)
      stop = Stop.new("stop")
      raised = interrupt_parked_writer(->(f) { UringMachine.machine.schedule(f, stop) }) { a.write(data) }
      assert_same stop, raised, "fast_io #{fast}"
      assert_stopped_write raised, data, drain(b)
    ensure
      [a, b].each { |io| io&.close }
    end
  end

  def test_write_of_several_pieces_counts_them_all
    each_path(:coalesce_writes) do |r, w, path|
      capacity = pipe_capacity(w)
      pieces = [payload(capacity / 2), payload(capacity), payload(capacity + 1)]
      raised = under_timeout { w.write(*pieces) }
      assert_timed_out raised, path
      assert_stopped_write raised, pieces.join, drain(r)
    end
  end

  def test_puts_of_several_lines_counts_them_all
    each_path(:coalesce_writes) do |r, w, path|
      capacity = pipe_capacity(w)
      lines = [payload(100).unpack1("H*"), payload(capacity).unpack1("H*")]
      raised = under_timeout { w.puts(*lines) }
      assert_timed_out raised, path
      assert_stopped_write raised, lines.join("\n") + "\n", drain(r)
    end
  end

  def test_the_io_write_hook_raises_with_the_count
    with_pipe do |r, w|
      data = payload(pipe_capacity(w) * 3)
      raised = interrupt_parked_writer(->(f) { UringMachine.machine.schedule(f, Stop.new("stop")) }) do
        scheduler = Fiber.scheduler
        version = UringMachine::Scheduler::INTERFACE_VERSION
        buffer = IO::Buffer.for(data)
        if version >= 4
          scheduler.io_write(w, buffer, 0, data.bytesize)
        elsif ruby_at_least?("3.2")
          scheduler.io_write(w, buffer, data.bytesize, 0)
        else
          scheduler.io_write(w, buffer, data.bytesize)
        end
      end
      assert_kind_of Stop, raised
      assert_stopped_write raised, data, drain(r)
    end
  end

  def test_copy_stream_into_a_pipe
    with_pipe do |r, w|
      data = payload(pipe_capacity(w) * 3)
      with_source_file(data) do |src|
        raised = interrupt_parked_writer(stop_once_readable(r)) { IO.copy_stream(src, w) }
        assert_kind_of Stop, raised
        assert_stopped_write raised, data, drain(r)
        assert_equal raised.bytes_written, src.pos, "the source is read up to what went out"
      end
    end
  end

  def test_copy_stream_counts_the_bytes_read_ahead_too
    with_pipe do |r, w|
      data = payload(pipe_capacity(w) * 3)
      with_source_file(data) do |src|
        src.getc # Ruby reads ahead: copy_stream writes that first, then splices the rest
        raised = interrupt_parked_writer(stop_once_readable(r)) { IO.copy_stream(src, w) }
        assert_kind_of Stop, raised
        assert_stopped_write raised, data.byteslice(1..), drain(r)
        assert_equal 1 + raised.bytes_written, src.pos
      end
    end
  end

  # File to file copies in pieces with copy_file_range, the other fibers running after each
  # piece on the fiber's thread (the first one, before the rest goes to a thread of its own):
  # an interrupt there stops the copy after whole pieces, both positions at what went out. The
  # interrupter is scheduled first, so it is queued when the copy lets the others run, whether
  # or not the copying thread would finish before the fiber waits for it. (It calls nothing
  # that may wait: Ruby 4.0 sends a File.size to a worker thread.)
  def test_copy_stream_file_to_file
    data = payload(1 << 23)
    with_source_file(data) do |src|
      Tempfile.create("copy-dst") do |dst|
        raised = with_scheduler do
          writer = outcome = nil
          Fiber.schedule do
            Fiber.scheduler.machine.snooze until writer # the copy's first piece lets it run
            writer.raise(Stop, "stop")
          end
          Fiber.schedule do
            writer = Fiber.current # before the copy: Fiber.schedule may run it at once
            IO.copy_stream(src, dst)
            outcome = :returned
          rescue Stop => e
            outcome = e
          end
          Fiber.set_scheduler(nil)
          outcome
        end
        assert_kind_of Stop, raised
        assert_stopped_write raised, data, File.binread(dst.path)
        assert_equal raised.bytes_written, src.pos, "the source is read up to what went out"
        assert_equal raised.bytes_written, dst.pos
      end
    end
  end

  def test_copy_stream_into_a_socket
    a, b = UNIXSocket.pair
    data = payload(1 << 22)
    with_source_file(data) do |src|
      raised = interrupt_parked_writer(stop_once_readable(b)) { IO.copy_stream(src, a) }
      assert_kind_of Stop, raised
      assert_stopped_write raised, data, drain(b)
      assert_equal raised.bytes_written, src.pos, "bytes taken but not sent went back to the file"
    end
  ensure
    [a, b].each { |io| io&.close }
  end
end
