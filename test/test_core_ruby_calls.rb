# frozen_string_literal: true

require_relative "scheduler_helper"
require "rbconfig"

# The Ruby calls the Rust core makes. One that raises (a user's method, a frozen object, an
# allocation) gives its exception to the caller and leaves the machine usable: no Ruby longjmp
# crosses a Rust frame. Objects the core holds while it allocates stay where GC sees them (the
# GC.stress cases run in a child Ruby: a crash there fails the test instead of ending the run).
class TestCoreRubyCalls < MachineTest
  include SchedulerTestHelper

  # Runs `code` in a child Ruby with the gem loaded; returns what it printed.
  def run_child(code)
    lib = File.expand_path("../lib", __dir__)
    output = IO.popen([RbConfig.ruby, "-I", lib, "-ruring_machine", "-e", code], err: %i[child out], &:read)
    assert_predicate $?, :success?, "child Ruby failed:\n#{output[0, 3000]}"
    output
  end

  def assert_machine_usable
    assert_equal :ok, machine.join(machine.spin { machine.sleep(0.001) && :ok })
  end

  def test_receive_all_pending_under_gc_stress
    output = run_child(<<~'RUBY')
      m = UringMachine::Machine.new
      result = m.join(m.spin do
        me = Fiber.current
        400.times { |i| me << "message #{i}" * 2 }
        GC.stress = true
        all = UringMachine.receive_all_pending
        GC.stress = false
        [all.size, all.each_with_index.count { |s, i| s == "message #{i}" * 2 }]
      end)
      print result.inspect
    RUBY
    assert_equal "[400, 400]", output
  end

  # Every allocation collects: one made while the machine's state is borrowed (or a VALUE held
  # where GC does not look) would crash this.
  def test_machine_api_under_gc_stress
    output = run_child(<<~'RUBY')
      m = UringMachine::Machine.new
      r, w = IO.pipe
      GC.stress = true
      reader = m.spin { chunks = []; m.read_each(r) { |c| chunks << c }; chunks.join }
      writer = m.spin { 3.times { |i| m.write(w, "chunk#{i} "); m.sleep(0.001) }; w.close; :written }
      children = [m.spin { m.sleep(0.001); :a }, m.spin { :b }]
      listed = UringMachine.children_of(Fiber.current).size
      waits = m.__waits__.size + m.__runqueue__.size
      both = m.join(*children)
      timed_out = begin; m.timeout(0.001) { m.sleep(1) }; rescue UringMachine::TimeoutError; :timed_out; end
      text = m.join(reader)
      metrics = m.metrics
      GC.stress = false
      print [text, m.join(writer), both, listed, waits > 0, timed_out, metrics[:ops].size > 0].inspect
    RUBY
    assert_equal '["chunk0 chunk1 chunk2 ", :written, [:a, :b], 4, true, :timed_out, true]', output
  end

  # Coalesced writes join the pieces into a String of their own while pieces move (GC.compact)
  # and collections run at every allocation.
  def test_coalesced_writes_under_gc_stress_and_compaction
    skip "GC.compact is not supported here" unless GC.respond_to?(:compact)
    output = run_child(<<~'RUBY')
      r, w = IO.pipe
      got = +""
      Thread.new do
        Fiber.set_scheduler(UringMachine::Scheduler.new)
        Fiber.schedule do
          20.times do |i|
            GC.compact if i % 5 == 0
            GC.stress = true
            w.write("a#{i}", :b, "c" * i)
            w.puts("line#{i}", [i, [i + 1]])
            w.print("p", i, "\n")
            GC.stress = false
          end
          w.close
        end
        Fiber.schedule { got << r.read }
      end.join
      expected = 20.times.map { |i| "a#{i}b#{'c' * i}line#{i}\n#{i}\n#{i + 1}\np#{i}\n" }.join
      print got == expected
    RUBY
    assert_equal "true", output
  end

  # The fiber tree and join keep their Hashes of fibers; reading them calls no method.
  def test_redefined_hash_to_a_is_not_called
    output = run_child(<<~'RUBY')
      class Hash
        def to_a = raise("Hash#to_a called")
      end
      m = UringMachine::Machine.new
      sleeper = m.spin { m.sleep(0.001); :slept }
      waiter = m.spin { m.join(sleeper) }
      parent = m.spin { m.spin { m.sleep(10) }; UringMachine.__spun_children_of__(Fiber.current).size }
      listed = UringMachine.children_of(Fiber.current).size
      print [m.join(waiter), m.join(parent), listed].inspect
    RUBY
    assert_equal "[:slept, 1, 3]", output
  end

  def test_uninitialized_fiber_is_refused
    fiber = Fiber.allocate
    assert_raises(ArgumentError) { machine.schedule(fiber) }
    assert_raises(ArgumentError) { machine.join(fiber) }
    assert_raises(ArgumentError) { UringMachine.parent_of(fiber) }
    assert_raises(ArgumentError) { fiber << :message }
    assert_nil machine.snooze
    assert_machine_usable
  end

  def test_fiber_frozen_before_it_starts
    fiber = machine.spin { :never }
    fiber.freeze
    assert_raises(FrozenError) { machine.join(fiber) }
    # It fails as it starts (nothing can be recorded on it); the failure reaches its parent.
    assert_raises(FrozenError) { machine.snooze }
    refute fiber.alive?
    assert_machine_usable
  end

  def test_fiber_frozen_while_it_runs_wakes_its_joiners
    fiber = machine.spin { machine.sleep(0.01) && :done }
    joiner = machine.spin { machine.join(fiber) }
    machine.snooze
    fiber.freeze
    # Its outcome cannot be recorded on it: FrozenError is its failure, raised in its parent
    # (this fiber), and its joiner is woken all the same.
    assert_raises(FrozenError) { machine.timeout(5) { machine.join(joiner) } }
    assert_nil machine.timeout(5) { machine.join(joiner) }
    assert_machine_usable
  end

  # On Ruby 3.1, String#dup of a String the ring reads into moves its bytes to a new frozen
  # String the two share, and CRuby then refuses to set its length: its RuntimeError is raised.
  # Later Rubies copy: the read lands as usual.
  def test_read_buffer_duplicated_while_the_read_waits
    r, w = IO.pipe
    buffer = +("x" * 100)
    reader = machine.spin { machine.read(r, buffer, 10, -1) }
    machine.snooze
    copy = buffer.dup
    machine.write(w, "hello")
    result = begin
      machine.join(reader)
    rescue RuntimeError => e
      e
    end
    if result.is_a?(RuntimeError)
      assert_match(/shared/, result.message)
    else
      assert_equal 5, result
      assert_equal "#{'x' * 100}hello", buffer
    end
    assert_equal "x" * 100, copy
    assert_machine_usable
  ensure
    [r, w].each(&:close)
  end

  # A Numeric of the user's whose conversions (divmod for Kernel#sleep's, to_f for others) raise.
  class Unconvertible < Numeric
    def to_f = raise(ArgumentError, "not convertible")
    def divmod(_other) = raise(ArgumentError, "not convertible")
  end

  def test_numeric_whose_conversion_raises
    error = assert_raises(ArgumentError) { machine.sleep(Unconvertible.new) }
    assert_equal "not convertible", error.message
    error = assert_raises(ArgumentError) { machine.timeout(Unconvertible.new) { :never } }
    assert_equal "not convertible", error.message
    assert_machine_usable
  end

  # An IO without a stream: CRuby's methods raise IOError for it, the fast paths must not.
  def test_uninitialized_io_under_the_scheduler
    errors = with_scheduler do
      io = IO.allocate
      calls = [
        -> { io.write("a") }, -> { io.write("a", "b") }, -> { io.syswrite("a") },
        -> { io.puts("a", "b") }, -> { io.print("a", "b") }
      ]
      results = []
      # Fiber.schedule runs the fiber at once; nothing here waits, so it is done on return.
      Fiber.schedule { results.concat(calls.map { |call| call.call rescue $!.class }) }
      results
    end
    assert_equal [IOError] * 5, errors
  end
end
