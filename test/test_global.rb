# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"

# `require "uring_machine/global"` makes spin, supervise, receive, move_on_after and
# cancel_after global functions; plain `require "uring_machine"` does not.
class TestGlobal < Minitest::Test
  LIB = File.expand_path("../lib", __dir__)

  def run_ruby(code)
    out, err, status = Open3.capture3(RbConfig.ruby, "-w", "-I", LIB, "-e", code)
    assert status.success?, "ruby failed: #{err}"
    assert_empty err, "no warnings"
    out
  end

  def test_the_opt_in_require_defines_the_global_functions
    out = run_ruby(<<~RUBY)
      require "uring_machine/global"
      fiber = spin { [receive, move_on_after(0.01, with_value: :moved) { UringMachine.machine.sleep(1) }] }
      fiber << :message
      begin
        cancel_after(0.01) { UringMachine.machine.sleep(1) }
      rescue UringMachine::Cancel
        print "cancelled "
      end
      p fiber.join
      spin { :supervised }
      p supervise
      p Object.new.respond_to?(:spin), Object.private_method_defined?(:spin)
    RUBY
    assert_equal "cancelled [:message, :moved]\nnil\nfalse\ntrue\n", out
  end

  def test_the_plain_require_leaves_kernel_alone
    out = run_ruby(<<~RUBY)
      require "uring_machine"
      p %i[spin supervise receive move_on_after cancel_after].map { |m| Kernel.private_method_defined?(m) }
    RUBY
    assert_equal "[false, false, false, false, false]\n", out
  end
end
