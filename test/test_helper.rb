# frozen_string_literal: true

require "minitest/autorun"
require "socket"
require "uring_machine"

# IO::Buffer warns that it is experimental on Ruby 3.1-3.2; that is Ruby's news, not ours.
Warning[:experimental] = false

module MachineTestHelper
  def setup
    super
    @machine = UringMachine::Machine.new
    @fds_before = open_fd_count
  end

  def teardown
    GC.start
    assert_operator open_fd_count, :<=, @fds_before + 2, "file descriptors leaked" if @fds_before
    super
  end

  attr_reader :machine

  def open_fd_count
    Dir.children("/proc/self/fd").size
  end

  # Runs the block in a fiber on the machine and returns its value (re-raising its error).
  def in_fiber(&block)
    machine.join(machine.spin(&block))
  end
end

class MachineTest < Minitest::Test
  include MachineTestHelper
end
