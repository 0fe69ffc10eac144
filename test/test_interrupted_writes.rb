# frozen_string_literal: true

require_relative "test_helper"
require_relative "interrupted_writes_helper"

# A method that promises to write everything (write, writev, send) writes everything or raises
# the interrupt (a timeout, Machine#schedule with an exception, Fiber#raise) there and then:
# the exception is the original object, extended with UringMachine::PartialWrite, whose
# bytes_written is what went out before it; never a short count with the exception left for
# later. Every reader here reads only after the interrupt, so each write has to wait.
class TestInterruptedWrites < MachineTest
  include InterruptedWritesHelper

  def setup
    super
    @r, @w = IO.pipe
    @trigger_r, @trigger_w = IO.pipe
  end

  def teardown
    [@r, @w, @trigger_r, @trigger_w].each { |io| io.close unless io.closed? }
    super
  end

  # Runs +write+ in a fiber that parks in the ring (the pipe is full), then +interrupt+s it;
  # returns what the fiber returned or raised.
  def interrupt_parked_writer(interrupt, &write)
    writer = machine.spin do
      write.call
    rescue Exception => e # rubocop:disable Lint/RescueException
      e
    end
    machine.snooze # the writer fills the pipe and parks in a WRITE op
    interrupt.call(writer)
    machine.join(writer)
  end

  # Runs +write+ in a fiber under machine.timeout(seconds, *exception); returns what stopped it
  # (or :returned).
  def under_timeout(seconds, *exception, &write)
    in_fiber do
      machine.timeout(seconds, *exception, &write)
      :returned
    rescue Exception => e # rubocop:disable Lint/RescueException
      e
    end
  end

  def test_write_under_timeout_raises_the_timeout_with_the_count
    data = payload(pipe_capacity(@w) * 3)
    timeout = RuntimeError.new("too slow")
    raised = under_timeout(0.02, timeout) { machine.write(@w, data) }
    assert_same timeout, raised, "the timeout's own exception, not a short count"
    assert_stopped_write raised, data, drain(@r)
    assert_equal 0.001, machine.sleep(0.001), "nothing left pending after the block"
  end

  def test_the_reproducer_from_the_issue
    a, b = UNIXSocket.pair
    data = "x" * (1 << 20)
    raised = under_timeout(0.05, RuntimeError) { machine.write(a, data) }
    assert_kind_of RuntimeError, raised
    assert_stopped_write raised, data, drain(b)
  ensure
    [a, b].each { |io| io&.close }
  end

  def test_write_stopped_by_schedule_raises_the_same_exception
    data = payload(pipe_capacity(@w) * 3)
    stop = Stop.new("stop")
    raised = interrupt_parked_writer(->(f) { machine.schedule(f, stop) }) { machine.write(@w, data) }
    assert_same stop, raised
    assert_stopped_write raised, data, drain(@r)
  end

  def test_write_stopped_by_fiber_raise
    data = payload(pipe_capacity(@w) * 3)
    raised = interrupt_parked_writer(->(f) { f.raise(Stop, "raised") }) { machine.write(@w, data) }
    assert_equal [Stop, "raised"], [raised.class, raised.message]
    assert_stopped_write raised, data, drain(@r)
  end

  def test_writev_stopped_raises_with_the_count_over_all_buffers
    capacity = pipe_capacity(@w)
    pieces = [payload(capacity / 2), payload(capacity), payload(capacity + 1)]
    stop = Stop.new("stop")
    raised = interrupt_parked_writer(->(f) { machine.schedule(f, stop) }) { machine.writev(@w, *pieces) }
    assert_same stop, raised
    assert_stopped_write raised, pieces.join, drain(@r)
  end

  def test_send_stopped_raises_with_the_count
    a, b = UNIXSocket.pair
    data = payload(1 << 21)
    stop = Stop.new("stop")
    raised = interrupt_parked_writer(->(f) { machine.schedule(f, stop) }) { machine.send(a, data) }
    assert_same stop, raised
    assert_stopped_write raised, data, drain(b)
  ensure
    [a, b].each { |io| io&.close }
  end

  def test_send_under_timeout
    a, b = UNIXSocket.pair
    data = payload(1 << 21)
    raised = under_timeout(0.02) { machine.send(a, data) }
    assert_kind_of UringMachine::TimeoutError, raised
    assert_stopped_write raised, data, drain(b)
  ensure
    [a, b].each { |io| io&.close }
  end

  # The case that used to return a short count: the WRITE op went through (partly) in the same
  # batch of completions as the interrupt. An interrupter whose own read completes just before
  # the writer's op runs in between (see test_completed_ops.rb): no timing involved.
  def race_partial_write(data, drain_now)
    drained = +"".b
    writer = nil
    machine.spin do
      machine.read(@trigger_r, +"", 1)
      machine.schedule(writer, Stop.new("stop"))
    end
    writer = machine.spin do
      [:returned, machine.write(@w, data), (machine.sleep(5) rescue $!)] # rubocop:disable Style/RescueModifier
    rescue Stop => e
      [:raised, e]
    end
    machine.snooze # both parked: the interrupter in a READ, the writer in a WRITE
    @trigger_w << "!"
    drained << @r.read_nonblock(drain_now)
    [machine.join(writer), drained]
  end

  def test_a_write_that_went_on_as_the_interrupt_came_never_returns_a_short_count
    data = payload(pipe_capacity(@w) * 3)
    (outcome, raised), drained = race_partial_write(data, 4096)
    assert_equal :raised, outcome, "no short count: #{raised.inspect}"
    drained << drain(@r)
    assert_stopped_write raised, data, drained
    assert_operator raised.bytes_written, :>, pipe_capacity(@w), "the op's own bytes are counted"
  end

  def test_a_write_that_completed_as_the_interrupt_came_returns_all_and_raises_at_the_next_wait
    capacity = pipe_capacity(@w)
    data = payload(capacity + 100)
    (outcome, count, next_wait), drained = race_partial_write(data, capacity)
    assert_equal [:returned, data.bytesize], [outcome, count]
    assert_kind_of Stop, next_wait, "the interrupt comes at the fiber's next wait"
    assert_equal data, drained + drain(@r)
  end

  def test_a_timeout_whose_block_wrote_everything_never_fires_later
    capacity = pipe_capacity(@w)
    data = payload(capacity + 100)
    f = machine.spin do
      machine.timeout(0.02) { machine.write(@w, data) }
    end
    machine.snooze # the writer waits in a WRITE op for the last 100 bytes
    drained = @r.read_nonblock(capacity)
    sleep 0.1 # the thread, not the machine: the timer fires while the write's completion waits
    assert_equal data.bytesize, machine.join(f), "all written: the block's result stands"
    assert_equal 0.001, machine.sleep(0.001), "the timeout does not escape its block"
    assert_equal data, drained + drain(@r)
  end

  def test_a_frozen_exception_is_raised_as_it_is
    data = payload(pipe_capacity(@w) * 3)
    stop = Stop.new("frozen").freeze
    raised = interrupt_parked_writer(->(f) { machine.schedule(f, stop) }) { machine.write(@w, data) }
    assert_same stop, raised
    refute_kind_of UringMachine::PartialWrite, raised
    assert_equal pipe_capacity(@w), drain(@r).bytesize
  end

  def test_a_reused_exception_carries_the_count_of_the_write_it_stopped
    data = payload(pipe_capacity(@w) * 3)
    stop = Stop.new("stop")
    first = interrupt_parked_writer(->(f) { machine.schedule(f, stop) }) { machine.write(@w, data) }
    assert_operator first.bytes_written, :>, 0
    # The pipe is still full: this write gets nothing out before the same exception stops it.
    second = interrupt_parked_writer(->(f) { machine.schedule(f, stop) }) { machine.write(@w, data) }
    assert_same stop, second
    assert_equal 0, second.bytes_written
    drain(@r)
  end

  def test_an_error_after_some_bytes_went_out_carries_the_count
    a, b = UNIXSocket.pair
    data = payload(1 << 21)
    closer = ->(_) { b.close }
    raised = interrupt_parked_writer(closer) { machine.write(a, data) }
    assert_kind_of Errno::EPIPE, raised
    assert_kind_of UringMachine::PartialWrite, raised
    assert_operator raised.bytes_written, :>, 0
  ensure
    [a, b].each { |io| io.close unless io.closed? }
  end

  def test_partial_write_add
    e = RuntimeError.new("x")
    assert_same e, UringMachine::PartialWrite.__add__(e, 3)
    UringMachine::PartialWrite.__add__(e, 4)
    assert_equal 7, e.bytes_written
    assert_raises(TypeError) { UringMachine::PartialWrite.__add__(Object.new, 1) }
    assert_raises(ArgumentError) { UringMachine::PartialWrite.__add__(e, -1) }
  end
end
