# frozen_string_literal: true

require_relative "scheduler_helper"

class TestSchedulerSelect < SchedulerTest
  def with_ios
    r, w = IO.pipe
    a, b = UNIXSocket.pair
    server = TCPServer.new("127.0.0.1", 0)
    client = TCPSocket.new("127.0.0.1", server.addr[1])
    peer = server.accept
    yield r, w, a, b, client, peer
  ensure
    [r, w, a, b, server, client, peer].compact.each(&:close)
  end

  def test_select_reports_readable_and_writable_pipes_and_sockets
    got = with_scheduler do
      with_ios do |r, w, a, b, client, peer|
        got = {}
        schedule_fiber do
          w.write("p")
          b.write("u")
          peer.write("t")
          sleep 0.01 # let the TCP segment arrive
          readable, writable, = IO.select([r, a, client], [w, b, peer], nil, 5)
          got[:readable] = readable.map { |io| [r, a, client].index(io) }.sort
          got[:writable] = writable.map { |io| [w, b, peer].index(io) }.sort
          got[:data] = [r.read(1), a.read(1), client.read(1)]
          got[:after_drain] = IO.select([r, a, client], nil, nil, 0)
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_equal [0, 1, 2], got[:readable]
    assert_equal [0, 1, 2], got[:writable]
    assert_equal %w[p u t], got[:data]
    assert_nil got[:after_drain]
  end

  def test_select_times_out_with_nil
    got = with_scheduler do
      with_ios do |r, _w, a, _b, client, _peer|
        got = {}
        schedule_fiber do
          got[:time] = elapsed { got[:result] = IO.select([r, a, client], nil, nil, 0.05) }
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_nil got[:result]
    assert_operator got[:time], :>=, 0.04
    assert_operator got[:time], :<, 5
  end

  def test_select_sees_data_buffered_inside_ruby
    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          w.write("one\ntwo\n")
          got[:first] = r.gets # the second line now sits in r's buffer, not in the pipe
          got[:time] = elapsed { got[:select] = IO.select([r], nil, nil, 2) }
          got[:second] = r.gets
        end
        Fiber.set_scheduler(nil)
        got.merge(r: r)
      end
    end
    assert_equal "one\n", got[:first]
    assert_equal [[got[:r]], [], []], got[:select]
    assert_operator got[:time], :<, 1
    assert_equal "two\n", got[:second]
  end

  def test_select_waits_while_other_fibers_run
    got = with_scheduler do
      with_ios do |r, w, a, b, _client, _peer|
        got = {}
        schedule_fiber do
          got[:pipe] = IO.select([r, a], nil, nil, 10)&.first
          got[:socket] = IO.select([a], nil, nil, 10)&.first
        end
        schedule_fiber do
          sleep 0.01
          w.write("x")
          sleep 0.01
          b.write("y")
        end
        Fiber.set_scheduler(nil)
        got.merge(r: r, a: a)
      end
    end
    assert_equal [got[:r]], got[:pipe]
    assert_equal [got[:a]], got[:socket]
  end

  def test_select_timeout_lets_other_fibers_run
    got = with_scheduler do
      with_pipe do |r, _w|
        got = { ticks: 0 }
        schedule_fiber { got[:result] = IO.select([r], nil, nil, 0.1) }
        schedule_fiber do
          3.times do
            sleep 0.005
            got[:ticks] += 1
          end
          got[:select_still_waiting] = !got.key?(:result)
        end
        Fiber.set_scheduler(nil)
        got
      end
    end
    assert_nil got[:result]
    assert_equal 3, got[:ticks]
    assert got[:select_still_waiting]
  end

  def test_io_select_hook_directly
    got = with_scheduler do |scheduler|
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          got[:timeout] = scheduler.io_select([r], nil, nil, 0.01)
          w.write("z")
          got[:ready] = scheduler.io_select([r], [w], [], 1)
        end
        Fiber.set_scheduler(nil)
        got.merge(r: r, w: w)
      end
    end
    assert_nil got[:timeout]
    assert_equal [[got[:r]], [got[:w]], []], got[:ready]
  end

  def test_select_with_fewer_than_four_arguments
    got = with_scheduler do
      with_pipe do |r, w|
        got = {}
        schedule_fiber do
          got[:read_write] = IO.select([r], [w])
          w.write("z")
          got[:read_only] = IO.select([r])
        end
        Fiber.set_scheduler(nil)
        got.merge(r: r, w: w)
      end
    end
    assert_equal [[], [got[:w]], []], got[:read_write]
    assert_equal [[got[:r]], [], []], got[:read_only]
  end

  # Ruby 3.1 has no io_select hook: IO.select is routed to the scheduler (IOSelect,
  # core_ext/io.rb), so the other fibers run while one waits in it, on every Ruby.
  def test_select_lets_a_ticker_run_until_a_third_fiber_writes
    got = with_scheduler do
      with_pipe do |r, w|
        got = { ticks: 0, ticks_at_write: nil }
        schedule_fiber do
          got[:result] = IO.select([r], nil, nil, 5)
          got[:ticks_at_result] = got[:ticks]
        end
        schedule_fiber do
          sleep 0.002 until got.key?(:result) || (got[:ticks] += 1) > 2_000
        end
        schedule_fiber do
          sleep 0.002 until got[:ticks] >= 5
          got[:ticks_at_write] = got[:ticks]
          w.write("x")
        end
        Fiber.set_scheduler(nil)
        got.merge(r: r)
      end
    end
    assert_equal [[got[:r]], [], []], got[:result]
    assert_operator got[:ticks_at_write], :>=, 5, "the ticker ran while IO.select waited"
    assert_operator got[:ticks_at_result], :>=, got[:ticks_at_write]
  end

  def test_select_rejects_what_ruby_rejects
    errors = with_scheduler do
      with_pipe do |r, _w|
        errors = []
        schedule_fiber do
          [-> { IO.select([r], nil, nil, -1) }, -> { IO.select(r, nil, nil, 1) }, -> { IO.select([r], nil, nil, "1") }].each do |call|
            call.call
            errors << nil
          rescue ArgumentError, TypeError => e
            errors << e.class
          end
        end
        Fiber.set_scheduler(nil)
        errors
      end
    end
    assert_equal [ArgumentError, TypeError, TypeError], errors
  end
end
