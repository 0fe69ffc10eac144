# frozen_string_literal: true

require_relative "test_helper"

class TestRingSetup < Minitest::Test
  def test_ring_uses_the_best_flags_the_kernel_accepts
    assert_includes %w[single_issuer+defer_taskrun coop_taskrun plain], UringMachine::Machine.new.setup_flags
  end
end
