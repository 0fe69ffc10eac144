# frozen_string_literal: true

require "socket"

# What the fast-path tests share: run a body on a fresh pair of IOs in a plain thread and in a
# scheduled fiber, compare the outcomes, and count the fast-path calls.
module FastIOHelper
  # Tests switch the fast path off; the next test starts with it on.
  def teardown
    UringMachine.fast_io = true
    super
  end

  # What a value looks like, to compare across runs: Strings with their encoding.
  def describe(value)
    case value
    when String then [:string, value.b, value.encoding.name]
    when Array then value.map { |v| describe(v) }
    else value
    end
  end

  # The outcome of +body+ on a fresh pair from +pair+ (read end, write end), after +prepare+
  # ran on it: its value (or exception) and what is left to read; under the scheduler also
  # how many fast-path calls the body made.
  def outcome(pair, prepare, body, fast: nil)
    r, w = pair.call
    result = begin
      prepare&.call(r, w)
      before = fast_calls if fast
      [:returned, describe(body.call(r, w))]
    rescue StandardError => e
      [:raised, e.class, e.message]
    ensure
      fast << (fast_calls - before) if fast && before
    end
    [result, drained(r)]
  ensure
    [r, w].each { |io| io.close if io && !io.closed? }
  end

  # What is left to read on +r+ (nothing if it is closed or not readable).
  def drained(io)
    return :closed if io.closed?

    io.read_nonblock(1 << 20).b
  rescue IO::WaitReadable, EOFError, IOError, SystemCallError
    :none
  end

  # Fast-path calls the current scheduler's machine has counted.
  def fast_calls
    Fiber.scheduler.machine.metrics[:fast_io]
  end

  # Asserts that +body+ has the same outcome in a scheduled fiber as in a plain thread;
  # returns [outcome, fast-path calls during the scheduled run].
  def assert_same_as_cruby(pair: -> { IO.pipe }, prepare: nil, &body)
    expected = Thread.new { outcome(pair, prepare, body) }.value
    actual, fast = in_scheduled_fiber do
      counts = []
      [outcome(pair, prepare, body, fast: counts), counts.sum]
    end
    assert_equal expected, actual
    [actual, fast]
  end

  def fill(data, close: false)
    lambda do |_r, w|
      w.write(data)
      w.close if close
    end
  end

  PAIRS = {
    pipe: -> { IO.pipe },
    unix: -> { UNIXSocket.pair },
    tcp: lambda {
      server = TCPServer.new("127.0.0.1", 0)
      client = TCPSocket.new("127.0.0.1", server.addr[1])
      peer = server.accept
      server.close
      [peer, client]
    }
  }.freeze

  TEXT = "héllo wörld, 0123456789"

  # Write side: the bytes the read end receives (read by a thread, so large writes work).
  def write_outcome(pair, body)
    r, w = pair.call
    reader = Thread.new do
      r.read.b
    rescue IOError
      :closed
    end
    result = begin
      [:returned, describe(body.call(w, r))]
    rescue StandardError => e
      [:raised, e.class, e.message]
    end
    w.close unless w.closed?
    [result, reader.value]
  ensure
    [r, w].each { |io| io.close if io && !io.closed? }
  end

  def assert_write_same_as_cruby(pair: -> { IO.pipe }, &body)
    expected = Thread.new { write_outcome(pair, body) }.value
    actual, fast = in_scheduled_fiber do
      before = fast_calls
      got = write_outcome(pair, body)
      [got, fast_calls - before]
    end
    assert_equal expected, actual
    [actual, fast]
  end
end
