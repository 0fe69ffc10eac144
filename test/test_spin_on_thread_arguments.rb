# frozen_string_literal: true

require_relative "test_helper"

# Bad arguments to spin(on_thread:) and worker_thread are clear errors in the caller: a
# TypeError for a value that is not a Thread (or a name that is not a String), an
# ArgumentError for a thread that runs no machine or has ended, never a hang.
class TestSpinOnThreadArguments < Minitest::Test
  def test_on_thread_must_be_a_thread
    error = assert_raises(TypeError) { UringMachine.spin(on_thread: "x") { 1 } }
    assert_equal "on_thread must be a Thread, not String", error.message
  end

  def test_a_thread_that_runs_no_machine_is_an_argument_error
    plain = Thread.new { Thread.stop }
    Thread.pass until plain.status == "sleep"
    error = assert_raises(ArgumentError) { UringMachine.spin(on_thread: plain) { 1 } }
    assert_match(/runs no UringMachine: nothing there would start the fiber/, error.message)
  ensure
    plain&.wakeup
    plain&.join
  end

  def test_a_thread_that_has_ended_is_an_argument_error
    ended = Thread.new { :done }
    ended.join
    error = assert_raises(ArgumentError) { UringMachine.spin(on_thread: ended) { 1 } }
    assert_match(/has ended/, error.message)
  end

  def test_worker_thread_name_must_be_a_string
    count = Thread.list.size
    error = assert_raises(TypeError) { UringMachine.worker_thread(name: 5) }
    assert_equal "a thread's name must be a String, not Integer", error.message
    assert_equal count, Thread.list.size, "no thread was started"
  end

  def test_a_named_isolated_fiber_on_a_worker_thread
    worker = UringMachine.worker_thread(name: "worker")
    fiber = UringMachine.spin(on_thread: worker, name: "remote job", isolated: true) { Thread.current.name }
    assert_equal ["worker", "remote job", true], [fiber.join, fiber.name, UringMachine.__isolated__(fiber)]
  ensure
    worker&.main_fiber&.stop
    worker&.join
  end
end
