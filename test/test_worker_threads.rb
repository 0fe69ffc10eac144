# frozen_string_literal: true

require_relative "scheduler_helper"

# Fibers across threads: spin(on_thread:) on a UringMachine.worker_thread, joined, stopped and
# failing across threads; a thread's main fiber in the tree (Thread#main_fiber,
# Thread#parent_fiber=), and threads nobody attaches left alone.
class TestWorkerThreads < Minitest::Test
  def setup
    @workers = []
  end

  def teardown
    @workers.each do |thread|
      thread.main_fiber&.stop
      thread.join(5) || flunk("a worker thread did not stop")
    end
  end

  def worker
    UringMachine.worker_thread(name: "worker #{@workers.size}").tap { |t| @workers << t }
  end

  def machine = UringMachine.machine

  def in_fiber(&block)
    machine.join(machine.spin(&block))
  end

  def test_a_fiber_spun_on_another_thread_runs_there_and_is_joined_from_here
    thread = worker
    value = in_fiber do
      fiber = UringMachine.spin(21, on_thread: thread) { |n| [Thread.current, n * 2] }
      assert_same Fiber.current, fiber.parent
      fiber.join
    end
    assert_equal [thread, 42], value
  end

  def test_its_fibers_use_ordinary_ruby_io_concurrently
    thread = worker
    r, w = IO.pipe
    value = in_fiber do
      reader = UringMachine.spin(on_thread: thread) { r.read(5) }
      writer = UringMachine.spin(on_thread: thread) { sleep 0.01; w.write("hello") }
      writer.join
      reader.join
    end
    assert_equal "hello", value
  ensure
    r&.close
    w&.close
  end

  def test_join_reraises_a_failure_from_the_other_thread
    thread = worker
    error = in_fiber do
      fiber = UringMachine.spin(on_thread: thread) do
        sleep 0.01
        raise KeyError, "over there"
      end
      fiber.join
    rescue KeyError => e
      e
    end
    assert_equal "over there", error.message
  end

  def test_an_unjoined_failure_is_raised_in_the_parent_on_its_thread
    thread = worker
    error = in_fiber do
      UringMachine.spin(on_thread: thread) do
        sleep 0.01
        raise KeyError, "to the parent"
      end
      machine.sleep(30)
    rescue KeyError => e
      e
    end
    assert_equal "to the parent", error.message
  end

  def test_stop_across_threads
    thread = worker
    log = Thread::Queue.new
    value = in_fiber do
      fiber = UringMachine.spin(on_thread: thread) do
        sleep 30
      ensure
        log << Thread.current
      end
      machine.sleep(0.01)
      fiber.stop(:stopped)
      fiber.join
    end
    assert_equal [:stopped, thread], [value, log.pop]
  end

  def test_the_parent_finishing_stops_its_children_on_other_threads
    thread = worker
    log = Thread::Queue.new
    in_fiber do
      parent = UringMachine.spin do
        UringMachine.spin(on_thread: thread) do
          sleep 30
        ensure
          log << :child_stopped
        end
        machine.sleep(0.01)
        :parent_done
      end
      assert_equal :parent_done, parent.join
      assert_equal 1, log.size, "the child ended before the parent's join returned"
    end
  end

  def test_spin_on_a_thread_that_takes_no_spins
    plain = Thread.new { sleep }
    assert_raises(ArgumentError) { UringMachine.spin(on_thread: plain) { 1 } }
  ensure
    plain&.kill&.join
  end

  def test_a_worker_thread_ends_when_its_main_fiber_is_stopped
    thread = UringMachine.worker_thread
    thread.main_fiber.stop
    assert thread.join(5), "stopped"
    assert_nil thread.value
  end

  def test_main_fiber_of_the_current_thread_is_its_root_fiber
    root = Fiber.current
    assert_same root, Thread.current.main_fiber
    assert_same root, in_fiber { Thread.current.main_fiber }
    assert_nil Thread.new { sleep }.tap { |t| @plain = t }.main_fiber, "another thread's, unknown"
  ensure
    @plain&.kill&.join
  end

  def test_a_thread_attached_with_parent_fiber_is_stopped_with_its_parent
    thread = UringMachine.worker_thread
    in_fiber do
      parent = UringMachine.spin do
        thread.parent_fiber = Fiber.current
        assert_includes Fiber.current.children, thread.main_fiber
        machine.sleep(0.01)
      end
      parent.join
    end
    assert thread.join(5), "the attached thread ended with its parent"
  end

  def test_threads_nobody_attaches_stay_independent
    bystander = Thread.new { sleep }
    in_fiber do
      UringMachine.spin { machine.sleep(0.01) }
      machine.snooze
    end
    assert bystander.alive?, "untouched by a finishing fiber"
  ensure
    bystander&.kill&.join
  end
end
