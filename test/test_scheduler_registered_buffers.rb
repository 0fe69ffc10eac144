# frozen_string_literal: true

require_relative "scheduler_helper"
require "rbconfig"
require "tmpdir"

# IO::Buffers registered with the ring: IO::Buffer#read/#pread/#write/#pwrite on them (and on
# their slices) become READ_FIXED / WRITE_FIXED ops; registration locks them.
class TestSchedulerRegisteredBuffers < SchedulerTest
  # IO::Buffer#pread/#pwrite take (io, length, offset) on 3.1 and (io, from, length) after.
  NEW_BUFFER_API = Gem::Version.new(RUBY_VERSION) >= Gem::Version.new("3.2")

  def setup
    super
    @dir = Dir.mktmpdir("um-registered")
    @path = File.join(@dir, "data")
    @data = Random.new(3).bytes(300_000)
    File.binwrite(@path, @data)
  end

  def teardown
    FileUtils.remove_entry(@dir) if @dir
    super
  end

  def pread(buffer, io, from, length)
    NEW_BUFFER_API ? buffer.pread(io, from, length) : buffer.pread(io, length, from)
  end

  def fixed_ops(scheduler)
    scheduler.machine.metrics[:ops].slice(:read_fixed, :write_fixed)
  end

  def test_registration_locks_the_buffer_until_unregistered
    with_scheduler do |scheduler|
      buffer = IO::Buffer.new(4096)
      assert_equal [0], scheduler.register_buffers([buffer])
      assert_equal [0], scheduler.register_buffers([buffer]), "registering again keeps the slot"
      assert buffer.locked?
      assert_raises(IO::Buffer::LockedError) { buffer.resize(8192) }
      assert_equal 1, scheduler.unregister_buffers([buffer])
      refute buffer.locked?
      buffer.resize(8192)
      assert_equal 0, scheduler.unregister_buffers([buffer])
    end
  end

  def test_file_reads_into_a_buffer_and_its_slices_are_read_fixed
    got, ops = with_scheduler do |scheduler|
      buffer = IO::Buffer.new(65_536)
      scheduler.register_buffers([buffer])
      got = []
      schedule_fiber do
        File.open(@path, "rb") do |file|
          got << pread(buffer, file, 1000, 4096) << buffer.get_string(0, 4096)
          slice = buffer.slice(10_000, 8192)
          got << pread(slice, file, 123_456, 8192) << slice.get_string
        end
      end
      Fiber.set_scheduler(nil)
      [got, fixed_ops(scheduler)]
    end
    assert_operator got[0], :>=, 4096
    assert_equal @data.byteslice(1000, 4096), got[1]
    assert_operator got[2], :>=, 8192
    assert_equal @data.byteslice(123_456, 8192), got[3]
    assert_equal({ read_fixed: 2 }, ops)
  end

  def test_writes_from_a_registered_buffer_are_write_fixed
    out = File.join(@dir, "out")
    ops = with_scheduler do |scheduler|
      buffer = IO::Buffer.new(8192)
      buffer.set_string("x" * 8192)
      buffer.set_string("registered", 100)
      scheduler.register_buffers([buffer])
      # IO::Buffer#write, not #pwrite: Ruby 3.1's #pwrite passes the hook a mangled offset.
      schedule_fiber { File.open(out, "wb") { |f| buffer.slice(100, 10).write(f, 10) } }
      Fiber.set_scheduler(nil)
      fixed_ops(scheduler)
    end
    assert_equal "registered", File.binread(out)
    assert_equal({ write_fixed: 1 }, ops)
  end

  def test_a_socket_read_waits_in_the_ring
    got = with_scheduler do |scheduler|
      a, b = UNIXSocket.pair
      buffer = IO::Buffer.new(1024)
      scheduler.register_buffers([buffer])
      got = nil
      schedule_fiber do
        count = buffer.read(b, 5)
        got = buffer.get_string(0, count)
      end
      schedule_fiber { a.write("later") }
      Fiber.set_scheduler(nil)
      [a, b].each(&:close)
      [got, fixed_ops(scheduler)]
    end
    assert_equal ["later", { read_fixed: 1 }], got
  end

  def test_unregistering_a_buffer_in_use_raises_and_leaves_it_registered
    outcome = with_scheduler do |scheduler|
      with_pipe do |r, w|
        buffer = IO::Buffer.new(64)
        scheduler.register_buffers([buffer])
        read = nil
        schedule_fiber { read = buffer.read(r, 4) }
        error = assert_raises(IOError) { scheduler.unregister_buffers([buffer]) }
        still_locked = buffer.locked?
        schedule_fiber { w.write("data") }
        Fiber.set_scheduler(nil)
        [error.message, still_locked, read, buffer.get_string(0, 4), scheduler.unregister_buffers]
      end
    end
    assert_match(/in use/, outcome[0])
    assert_equal [true, 4, "data", 1], outcome[1..]
  end

  def test_bad_input
    with_scheduler do |scheduler|
      assert_raises(TypeError) { scheduler.register_buffers(["a string"]) }
      assert_raises(TypeError) { scheduler.register_buffers(IO::Buffer.new(1)) }
      assert_raises(ArgumentError) { scheduler.register_buffers([IO::Buffer.new(0)]) }
      freed = IO::Buffer.new(16).tap(&:free)
      assert_raises(ArgumentError) { scheduler.register_buffers([freed]) }
      locked_elsewhere = IO::Buffer.new(16)
      locked_elsewhere.locked do
        assert_raises(IO::Buffer::LockedError) { scheduler.register_buffers([locked_elsewhere]) }
      end
      assert_raises(TypeError) { scheduler.unregister_buffers(42) }
      assert_equal 0, scheduler.unregister_buffers
    end
  end

  # Without CAP_IPC_LOCK, registered memory counts against RLIMIT_MEMLOCK: the error says so.
  def test_memlock_limit_gives_a_clear_error
    skip "needs root to drop to an unprivileged user" unless Process.uid.zero?

    lib = File.expand_path("../lib", __dir__)
    script = <<~RUBY
      require "uring_machine"
      Process.setrlimit(:MEMLOCK, 64 * 1024)
      Process::Sys.setgid(65_534)
      Process::Sys.setuid(65_534)
      machine = UringMachine::Machine.new(entries: 8) # the ring's owner is what the kernel checks
      buffer = IO::Buffer.new(4 * 1024 * 1024)
      begin
        machine.register_buffers([buffer])
        print "registered"
      rescue SystemCallError => e
        print e.class, ": ", e.message, " locked=", buffer.locked?
      end
    RUBY
    output = IO.popen([RbConfig.ruby, "-W0", "-I", lib, "-e", script], &:read)
    assert_match(/Errno::ENOMEM: .*RLIMIT_MEMLOCK is 65536 bytes.*ulimit -l.* locked=false/, output)
  end
end
