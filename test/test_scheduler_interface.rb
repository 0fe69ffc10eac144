# frozen_string_literal: true

require_relative "scheduler_helper"
require "open3"
require "rbconfig"

# Which Fiber::Scheduler interface the extension was built for (RUBY_FIBER_SCHEDULER_VERSION of
# the headers it was compiled against, not the Ruby version), and how each interface's
# byte-moving hooks order their arguments. The mapping is checked for every interface on every
# Ruby through UringMachine::Scheduler.__hook_arguments__, which answers
# [length, buffer_offset, file_offset (-1: the fd's position), single_transfer].
class TestSchedulerInterface < SchedulerTest
  INTERFACE = UringMachine::Scheduler::INTERFACE_VERSION

  def decode(hook, version, *args)
    UringMachine::Scheduler.__hook_arguments__(hook, version, *args)
  end

  # RUBY_FIBER_SCHEDULER_VERSION as the running Ruby's headers define it (1 when they predate it).
  def header_interface_version
    header = File.join(RbConfig::CONFIG["rubyhdrdir"], "ruby", "fiber", "scheduler.h")
    skip "no Ruby headers at #{header}" unless File.exist?(header)
    File.read(header)[/^#\s*define\s+RUBY_FIBER_SCHEDULER_VERSION\s+(\d+)/, 1]&.to_i || 1
  end

  def test_the_interface_is_the_one_of_the_headers
    assert_equal header_interface_version, INTERFACE
  end

  def test_rubies_before_4_1_have_an_interface_before_4
    skip "Ruby #{RUBY_VERSION} may have either interface" if ruby_at_least?("4.1.0.dev")
    assert_operator INTERFACE, :<, 4
  end

  def test_io_read_and_io_write_up_to_interface_3
    [1, 2, 3].each do |version|
      %i[io_read io_write].each do |hook|
        assert_equal [8, 0, -1, false], decode(hook, version, nil, nil, 8)
        assert_equal [8, 2, -1, false], decode(hook, version, nil, nil, 8, 2)
        assert_equal [8, 0, -1, false], decode(hook, version, nil, nil, 8, nil)
        assert_equal [0, 0, -1, false], decode(hook, version, nil, nil, 0, 0)
        assert_raises(ArgumentError) { decode(hook, version, nil, nil) }
        assert_raises(ArgumentError) { decode(hook, version, nil, nil, 8, 2, 1) }
      end
    end
  end

  def test_io_read_and_io_write_from_interface_4
    [4, 5].each do |version|
      %i[io_read io_write].each do |hook|
        assert_equal [8, 2, -1, true], decode(hook, version, nil, nil, 2, 8)
        assert_equal [8, 0, -1, true], decode(hook, version, nil, nil, 0, 8)
        assert_equal [0, 3, -1, true], decode(hook, version, nil, nil, 3, 0)
        assert_raises(ArgumentError) { decode(hook, version, nil, nil, 8) }
        assert_raises(ArgumentError) { decode(hook, version, nil, nil, 2, 8, 1) }
      end
    end
  end

  def test_io_pread_and_io_pwrite_at_interface_1
    %i[io_pread io_pwrite].each do |hook|
      assert_equal [8, 0, 100, false], decode(hook, 1, nil, nil, 8, 100)
      assert_raises(ArgumentError) { decode(hook, 1, nil, nil, 8) }
      assert_raises(ArgumentError) { decode(hook, 1, nil, nil, 100, 8, 2) }
    end
  end

  def test_io_pread_and_io_pwrite_at_interfaces_2_and_3
    [2, 3].each do |version|
      %i[io_pread io_pwrite].each do |hook|
        assert_equal [8, 2, 100, false], decode(hook, version, nil, nil, 100, 8, 2)
        assert_equal [8, 0, 100, false], decode(hook, version, nil, nil, 100, 8, nil)
        assert_raises(ArgumentError) { decode(hook, version, nil, nil, 8, 100) }
        assert_raises(ArgumentError) { decode(hook, version, nil, nil, 100, 8, 2, 1) }
      end
    end
  end

  def test_io_pread_and_io_pwrite_from_interface_4
    [4, 5].each do |version|
      %i[io_pread io_pwrite].each do |hook|
        assert_equal [8, 2, 100, true], decode(hook, version, nil, nil, 100, 2, 8)
        assert_equal [0, 2, 100, true], decode(hook, version, nil, nil, 100, 2, 0)
        assert_raises(ArgumentError) { decode(hook, version, nil, nil, 100, 8) }
        assert_raises(ArgumentError) { decode(hook, version, nil, nil, 100, 2, 8, 1) }
      end
    end
  end

  def test_bad_values_are_refused
    assert_raises(ArgumentError) { decode(:io_read, 3, nil, nil, -1, 0) }
    assert_raises(ArgumentError) { decode(:io_read, 3, nil, nil, 8, -1) }
    assert_raises(ArgumentError) { decode(:io_read, 4, nil, nil, 0, -1) }
    assert_raises(ArgumentError) { decode(:io_pread, 3, nil, nil, -1, 8, 0) }
    assert_raises(ArgumentError) { decode(:io_pread, 4, nil, nil, -1, 0, 8) }
    assert_raises(TypeError) { decode(:io_read, 3, nil, nil, "8") }
    assert_raises(ArgumentError) { decode(:io_wait, 3, nil, nil, 8) }
    assert_raises(ArgumentError) { decode(:io_read) }
  end

  # The hooks themselves decode with the built-in interface: called in its order, io_read puts
  # the bytes at the buffer offset, and moves at least `length` bytes (up to the room left)
  # before interface 4, one transfer of at most `length` from 4.
  def test_the_hooks_use_the_built_in_interface
    skip "io_read is a Ruby 3.1+ hook" unless ruby_at_least?("3.1")

    got = with_scheduler do |scheduler|
      with_pipe do |r, w|
        w.write("abcdef")
        buffer = IO::Buffer.new(8)
        args = INTERFACE >= 4 ? [r, buffer, 1, 2] : [r, buffer, 2, 1]
        count = nil
        schedule_fiber { count = scheduler.io_read(*args) }
        Fiber.set_scheduler(nil)
        [count, buffer.get_string(1, count)]
      end
    end
    assert_equal(INTERFACE >= 4 ? [2, "ab"] : [6, "abcdef"], got)
  end

  def test_a_program_under_w_gets_no_warning_about_the_buffers_cruby_hands_the_hooks
    lib = File.expand_path("../lib", __dir__)
    program = <<~RUBY
      require "uring_machine"
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule do
        r, w = IO.pipe
        w.write("x")
        print r.read(1)
      end
    RUBY
    out, err, status = Open3.capture3(RbConfig.ruby, "-w", "-I", lib, "-e", program)
    assert status.success?, err
    assert_equal ["x", ""], [out, err]
  end
end
