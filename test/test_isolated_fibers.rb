# frozen_string_literal: true

require_relative "layer_helper"
require "stringio"

# spin(isolated: true): a fiber whose failure stays its own. Its parent (an accept loop) and
# its siblings go on; the failure is an :error event of the nearest supervisor up the tree, or
# is printed on $stderr. join still re-raises it, and it is still stopped with its parent.
module IsolatedFiberCases
  def test_a_failure_is_not_raised_in_the_parent_and_siblings_go_on
    report = capture_stderr do
      result = run_in_fiber do
        sibling = UringMachine.spin { UringMachine.receive }
        failing = UringMachine.spin(isolated: true, name: "client 1") { raise Errno::ECONNRESET }
        pass_control until failing.alive? == false
        pass_control
        sibling << :still_here
        [sibling.join, :parent_goes_on]
      end
      assert_equal %i[still_here parent_goes_on], result
    end
    assert_match(/"client 1".* failed \(isolated: its parent goes on\)/, report)
    assert_match(/Connection reset by peer \(Errno::ECONNRESET\)/, report)
  end

  def test_join_still_raises_the_failure_and_nothing_is_printed
    report = capture_stderr do
      error = run_in_fiber do
        fiber = UringMachine.spin(isolated: true) { UringMachine.receive; raise ArgumentError, "bad input" }
        UringMachine.spin { fiber << :fail_now } # once the join below waits
        assert_raises(ArgumentError) { fiber.join }
      end
      assert_equal "bad input", error.message
    end
    assert_empty report
  end

  def test_a_supervisor_up_the_tree_hears_of_it_as_an_error_event
    events = run_in_fiber do
      log = []
      acceptor = UringMachine.spin(name: "acceptor") do
        UringMachine.receive # :go, once supervised
        other = UringMachine.spin(isolated: true, name: "client 3") { UringMachine.receive }
        UringMachine.spin(isolated: true, name: "client 2") { raise "boom" }
        UringMachine.receive # :done, once the supervisor heard of client 2
        other << :bye
        other.join
      end
      UringMachine.supervise(acceptor) do |event, fiber, error|
        log << [event, fiber.name, error&.message]
        acceptor << :go if event == :start
        acceptor << :done if event == :error
      end
      log
    end
    assert_equal [[:start, "acceptor", nil], [:error, "client 2", "boom"], [:stop, "acceptor", nil]], events
  end

  def test_an_isolated_fiber_is_still_stopped_with_its_parent
    log = []
    run_in_fiber do
      parent = UringMachine.spin do
        UringMachine.spin(isolated: true) do
          sleep_a_while
        ensure
          log << :child_ensure
        end
        pass_control
        :parent_done
      end
      parent.join
    end
    assert_equal [:child_ensure], log
  end

  def test_isolated_takes_true_or_false
    run_in_fiber do
      error = assert_raises(TypeError) { UringMachine.spin(isolated: :yes) { 1 } }
      assert_match(/isolated must be true or false/, error.message)
    end
  end

  def test_restart_keeps_the_name_and_the_isolation
    report = capture_stderr do
      run_in_fiber do
        first = UringMachine.spin(isolated: true, name: "job") { UringMachine.receive }
        pass_control # started: its body is known
        second = first.restart
        assert_equal "job", second.name
        second << :fail_now
        second.join
      end
    end
    assert_empty report
  end

  private

  def capture_stderr
    saved = $stderr
    $stderr = StringIO.new
    yield
    $stderr.string
  ensure
    $stderr = saved
  end
end

class TestIsolatedFibersMachine < Minitest::Test
  include IsolatedFiberCases
  include LayerOnMachine
end

class TestIsolatedFibersScheduler < SchedulerTest
  include IsolatedFiberCases
  include LayerOnScheduler
end
