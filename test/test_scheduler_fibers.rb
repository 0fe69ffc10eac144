# frozen_string_literal: true

require_relative "scheduler_helper"

# Fibers that interact with scheduled fibers: enumerators, blocking fibers, nesting, threads.
class TestSchedulerFibers < SchedulerTest
  def test_enumerator_next_inside_a_scheduled_fiber
    got = with_scheduler do
      got = []
      schedule_fiber do
        enum = [1, 2, 3].each
        sleep 0.001
        3.times { got << enum.next }
        got << assert_raises(StopIteration) { enum.next }.class
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal [1, 2, 3, StopIteration], got
  end

  def test_external_enumerator_whose_block_does_io
    got = with_scheduler do
      with_pipe do |r, w|
        lines = Enumerator.new do |y|
          while (line = r.gets)
            y << line.chomp
          end
        end
        # Another thread writes: the enumerator's own fiber may be blocking (it is on 3.1), so
        # its read must not depend on a fiber of this scheduler running.
        writer = Thread.new do
          %w[a b c].each do |s|
            sleep 0.005
            w.puts(s)
          end
        end
        got = []
        schedule_fiber do
          got << lines.next
          sleep 0.001
          got << lines.next << lines.next
        end
        Fiber.set_scheduler(nil)
        writer.join(10)
        got
      end
    end
    assert_equal %w[a b c], got
  end

  def test_external_enumerator_with_sleep_in_its_block
    got = with_scheduler do
      ticker = 0
      got = []
      schedule_fiber do
        enum = Enumerator.new do |y|
          3.times do |i|
            sleep 0.002
            y << i
          end
        end
        3.times { got << enum.next }
      end
      schedule_fiber { 2.times { sleep 0.001; ticker += 1 } }
      Fiber.set_scheduler(nil)
      got << ticker
    end
    assert_equal [0, 1, 2, 2], got
  end

  def test_fiber_blocking_inside_a_scheduled_fiber
    skip "Fiber.blocking { } needs Ruby 3.2+" unless Fiber.respond_to?(:blocking)

    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          got[:value] = Fiber.blocking do
            got[:blocking] = Fiber.current.blocking?
            w.write("blocking io")
            r.read(11)
          end
          got[:after] = pipe_roundtrip("scheduler io again")
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert got[:blocking]
    assert_equal "blocking io", got[:value]
    assert_equal "scheduler io again", got[:after]
  end

  def test_blocking_fiber_inside_a_scheduled_fiber
    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          writer = Thread.new do
            sleep 0.01
            w.write("from thread")
          end
          got[:value] = Fiber.new(blocking: true) { r.read(11) }.resume
          writer.join(10)
          got[:after] = pipe_roundtrip("scheduler io again")
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal "from thread", got[:value]
    assert_equal "scheduler io again", got[:after]
  end

  def test_nested_fiber_schedule
    got = with_scheduler do
      got = []
      schedule_fiber do
        queue = Queue.new
        3.times do |i|
          schedule_fiber do
            sleep 0.001 * (3 - i)
            schedule_fiber { queue << pipe_roundtrip("inner #{i}") }
          end
        end
        3.times { got << queue.pop }
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_equal ["inner 0", "inner 1", "inner 2"], got.sort
  end

  def test_deeply_nested_fiber_schedule
    depth = with_scheduler do
      depth = 0
      nest = lambda do |level|
        schedule_fiber do
          sleep 0
          depth = [depth, level].max
          nest.call(level + 1) if level < 100
        end
      end
      nest.call(1)
      Fiber.set_scheduler(nil)
      depth
    end
    assert_equal 100, depth
  end

  def test_a_scheduler_per_thread_in_eight_threads
    threads = 8.times.map do |t|
      scheduler_thread do |scheduler|
        results = []
        20.times do |i|
          schedule_fiber { results << pipe_roundtrip("t#{t} f#{i}") }
        end
        Fiber.set_scheduler(nil)
        [scheduler, results.sort]
      end
    end
    values = threads.map { |thread| finish(thread) }
    values.each_with_index do |(_scheduler, results), t|
      assert_equal 20.times.map { |i| "t#{t} f#{i}" }.sort, results
    end
    assert_equal 8, values.map { |scheduler, _| scheduler.object_id }.uniq.size
  end

  def test_thread_started_from_a_fiber_runs_without_the_scheduler
    got = with_scheduler do
      got = {}
      schedule_fiber do
        got[:inner] = Thread.new { Fiber.scheduler }.value
        got[:outer] = Fiber.scheduler
      end
      Fiber.set_scheduler(nil)
      got
    end
    assert_nil got[:inner]
    refute_nil got[:outer]
  end

  def test_fiber_yield_in_a_scheduled_fiber_suspends_it_until_it_is_scheduled
    got = with_scheduler do |scheduler|
      got = []
      fiber = schedule_fiber { got << Fiber.yield(:dropped) << :after }
      got << fiber.alive?
      scheduler.machine.schedule(fiber, :resumed)
      scheduler.run
      got << fiber.alive?
    end
    assert_equal [true, :resumed, :after, false], got
  end

  def test_transfer_hands_control_back_until_the_fiber_is_unblocked
    got = with_scheduler do |scheduler|
      got = []
      fiber = schedule_fiber { got << scheduler.transfer }
      got << :root
      scheduler.unblock(nil, fiber)
      scheduler.run
      got
    end
    assert_equal [:root, true], got
  end

  def test_fiber_yield_of_a_fiber_resumed_inside_a_scheduled_fiber_is_unchanged
    got = with_scheduler do
      got = nil
      schedule_fiber do
        inner = Fiber.new { Fiber.yield(:yielded) + 1 }
        got = [inner.resume, inner.resume(41)]
      end
      got
    end
    assert_equal [:yielded, 42], got
  end

  def test_run_and_close_do_not_wait_for_a_fiber_left_transferred
    got = with_scheduler do |scheduler|
      fiber = schedule_fiber { scheduler.transfer }
      scheduler.run
      Fiber.set_scheduler(nil)
      fiber.alive?
    end
    assert got, "the fiber stays suspended: nothing resumed it"
  end
end
