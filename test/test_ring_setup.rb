# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

class TestRingSetup < Minitest::Test
  SYSCTL = "/proc/sys/kernel/io_uring_disabled"

  def test_ring_uses_the_best_flags_the_kernel_accepts
    assert_includes %w[single_issuer+defer_taskrun coop_taskrun plain], UringMachine::Machine.new.setup_flags
  end

  def test_disabled_io_uring_gives_a_clear_error
    unless File.writable?(SYSCTL) && Process.uid.zero?
      skip "needs root and a writable #{SYSCTL} to disable io_uring for a moment"
    end
    before = File.read(SYSCTL)
    lib = File.expand_path("../lib", __dir__)
    script = 'begin; UringMachine::Machine.new; rescue SystemCallError => e; print e.class, ": ", e.message; end'
    output = begin
      File.write(SYSCTL, "2")
      IO.popen([RbConfig.ruby, "-I", lib, "-ruring_machine", "-e", script], &:read)
    ensure
      File.write(SYSCTL, before)
    end
    assert_match(/Errno::EPERM: .*io_uring is disabled.*io_uring_disabled/, output)
  end
end
