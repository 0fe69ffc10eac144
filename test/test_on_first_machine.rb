# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# Loading the gem changes none of IO's methods; the first Machine (a Scheduler makes one when
# it first runs) installs IO#close's fiber wake-ups, the fast paths and coalesced writes.
class TestOnFirstMachine < Minitest::Test
  LIB = File.expand_path("../lib", __dir__)

  SCRIPT = <<~RUBY
    require "uring_machine"
    patched = lambda do
      [IO.ancestors.include?(UringMachine::FastIO), IO.ancestors.include?(UringMachine::CoalescedWrites),
       IO.instance_method(:close).owner != IO, IO.private_method_defined?(:__cruby_syswrite),
       BasicSocket.private_method_defined?(:__cruby_recv)]
    end
    before = patched.call
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    Fiber.schedule { nil }
    Fiber.set_scheduler(nil)
    p [before, patched.call]
  RUBY

  def test_ios_methods_change_with_the_first_machine
    out = IO.popen([RbConfig.ruby, "-w", "-I", LIB, "-e", SCRIPT], err: %i[child out], &:read)
    assert $?.success?, out
    assert_equal [[false] * 5, [true] * 5].inspect, out.chomp
  end
end
