# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"

class TestBadInput < MachineTest
  def setup
    super
    @r, @w = IO.pipe
  end

  def teardown
    [@r, @w].each { |io| io.close unless io.closed? }
    super
  end

  def assert_still_usable
    @w << "ok"
    buffer = +""
    assert_equal 2, machine.read(@r, buffer, 10)
    assert_equal 0.001, machine.sleep(0.001)
  end

  def test_closed_io_raises_ioerror
    io = IO.pipe.first
    io.close
    assert_raises(IOError) { machine.read(io, +"", 10) }
    assert_raises(IOError) { machine.write(io, "x") }
    assert_still_usable
  end

  def test_bad_lengths_raise_argument_error
    assert_raises(ArgumentError) { machine.read(@r, +"", -1) }
    assert_raises(ArgumentError) { machine.read(@r, +"", 2**40) }
    assert_raises(ArgumentError) { machine.write(@w, "x", -5) }
    assert_raises(TypeError) { machine.read(@r, +"", "10") }
    assert_still_usable
  end

  def test_frozen_string_as_read_buffer
    assert_raises(FrozenError) { machine.read(@r, "frozen", 10) }
    assert_still_usable
  end

  def test_frozen_string_is_fine_to_write
    assert_equal 6, machine.write(@w, "frozen")
    assert_equal "frozen", @r.read_nonblock(10)
  end

  def test_read_only_io_buffer
    buffer = IO::Buffer.for("read-only")
    assert_raises(ArgumentError) { machine.read(@r, buffer, 4) }
    assert_still_usable
  end

  def test_wrong_types
    assert_raises(TypeError) { machine.read("not an io", +"", 1) }
    assert_raises(TypeError) { machine.read(@r, 42, 1) }
    assert_raises(TypeError) { machine.write(@w, :symbol) }
    assert_raises(ArgumentError) { machine.read(-3, +"", 1) }
    assert_raises(ArgumentError) { machine.read(@r) }
    assert_still_usable
  end

  def test_bad_fd_raises_errno
    assert_raises(Errno::EBADF) { machine.read(999_999, +"", 1) }
    assert_still_usable
  end

  def test_accept_on_a_non_socket
    assert_raises(Errno::ENOTSOCK) { machine.accept(@r) }
    assert_still_usable
  end

  def test_string_locked_while_the_ring_reads_into_it
    buffer = +""
    reader = machine.spin { machine.read(@r, buffer, 10) }
    machine.snooze
    assert_raises(RuntimeError) { buffer << "meddling" }
    @w << "safe"
    assert_equal 4, machine.join(reader)
    buffer << "!"
    assert_equal "safe!", buffer
  end

  def test_machine_of_another_thread
    thread = Thread.new { machine.sleep(0.001) }
    thread.report_on_exception = false
    assert_raises(RuntimeError) { thread.join }
    assert_still_usable
  end

  def test_schedule_with_a_fiber_of_another_thread
    fiber = Thread.new do
      other = UringMachine::Machine.new
      other.spin { :never_runs }
    end.value
    error = assert_raises(ArgumentError) { machine.schedule(fiber) }
    assert_match(/another thread/, error.message)
    assert_raises(ArgumentError) { machine.schedule(fiber, RuntimeError.new("no")) }
    assert_still_usable
  end

  # The classes the Rust side raises or recognises are looked up at load: a program that
  # removes their constants afterwards still gets them, not a Rust panic (fatal).
  def test_timeout_error_and_stop_outlive_their_constants
    code = <<~RUBY
      UringMachine.send(:remove_const, :TimeoutError)
      UringMachine.send(:remove_const, :Stop)
      m = UringMachine::Machine.new
      fiber = m.spin { raise "boom" }
      begin
        m.join(fiber)
      rescue RuntimeError => e
        print e.message, " "
      end
      begin
        m.timeout(0.001) { m.sleep(1) }
      rescue Timeout::Error => e
        print e.class.name
      end
    RUBY
    out, err, status = Open3.capture3(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-ruring_machine", "-e", code)
    assert status.success?, "the child process did not exit cleanly (#{status.inspect}): #{err[0, 2000]}"
    assert_equal "boom UringMachine::TimeoutError", out
  end

  def test_schedule_with_a_plain_fiber_of_another_thread
    created = Thread.new { Fiber.new { :never_runs } }.value
    finished = Thread.new { Fiber.new { :ran }.tap(&:resume) }.value
    [created, finished].each do |fiber|
      error = assert_raises(ArgumentError) { machine.schedule(fiber) }
      assert_match(/another thread/, error.message)
      assert_raises(ArgumentError) { machine.schedule(fiber, RuntimeError.new("no")) }
    end
    assert_equal :ran, machine.join(machine.spin { machine.sleep(0.001) && :ran })
    assert_still_usable
  end

  def test_fd_waiter_functions_check_their_argument
    %i[wake_fd_waiters release_fd_waiters].each do |function|
      assert_raises(TypeError, function.to_s) { UringMachine.public_send(function, nil) }
      assert_raises(TypeError, function.to_s) { UringMachine.public_send(function, "3") }
      assert_raises(ArgumentError, function.to_s) { UringMachine.public_send(function, -1) }
      assert_equal 0, UringMachine.public_send(function, @r.fileno)
    end
    assert_still_usable
  end
end
