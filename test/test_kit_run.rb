# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"

# UringMachine.run { }: a scheduler for the block's length on the current thread.
class TestKitRun < Minitest::Test
  LIMIT = 30

  # Runs the block on a fresh thread (its own scheduler state) and returns its value.
  def on_thread(&block)
    thread = Thread.new(&block)
    thread.report_on_exception = false
    assert thread.join(LIMIT), "the thread did not finish (hang?)"
    thread.value
  end

  def test_returns_the_blocks_value_under_a_scheduler_that_is_gone_after
    seen = on_thread do
      inside = UringMachine.run(20, 1) { |a, b| [Fiber.scheduler.class, a + b] }
      [inside, Fiber.scheduler]
    end
    assert_equal [[UringMachine::Scheduler, 21], nil], seen
  end

  def test_stops_spun_children_and_lets_scheduled_fibers_finish
    events = on_thread do
      log = []
      UringMachine.run do
        scheduled = Fiber.schedule do
          UringMachine.receive # sent as the spun child stops: it outlives the block
          log << :scheduled_fiber_finished
        end
        UringMachine.spin do
          sleep 30
        ensure
          log << :spun_child_stopped
          scheduled << :go
        end
        log << :block_done
      end
      log
    end
    assert_equal %i[block_done spun_child_stopped scheduled_fiber_finished], events
  end

  def test_the_blocks_failure_is_raised_after_its_children_are_stopped
    log = []
    error = on_thread do
      UringMachine.run do
        UringMachine.spin do
          sleep 30
        ensure
          log << :child_stopped
        end
        sleep 0
        raise ArgumentError, "block failed"
      end
    rescue ArgumentError => e
      [e.message, Fiber.scheduler]
    end
    assert_equal ["block failed", nil], error
    assert_equal [:child_stopped], log
  end

  def test_nested_it_only_runs_the_block
    same = on_thread do
      UringMachine.run do
        outer = Fiber.scheduler
        UringMachine.run(2) { |n| [Fiber.scheduler.equal?(outer), n] }
      end
    end
    assert_equal [true, 2], same
  end

  def test_deadlines_work_in_the_block
    outcome = on_thread do
      UringMachine.run { UringMachine.move_on_after(0.01, with_value: :moved) { sleep 30 } }
    end
    assert_equal :moved, outcome
  end

  def test_needs_a_block
    assert_raises(ArgumentError) { UringMachine.run }
  end

  def test_the_kernel_form_after_the_global_require
    code = <<~RUBY
      require "uring_machine/global"
      p(run { [Fiber.scheduler.class, spin { :child }.join] })
      p Fiber.scheduler
    RUBY
    out, err, status = Open3.capture3(RbConfig.ruby, "-w", "-I", File.expand_path("../lib", __dir__), "-e", code)
    assert status.success?, err
    assert_empty err
    assert_equal "[UringMachine::Scheduler, :child]\nnil\n", out
  end
end
