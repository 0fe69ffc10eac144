# frozen_string_literal: true

require_relative "layer_helper"
require "stringio"

# Fiber names (spin(name:), Fiber#name=), Fiber#inspect, and UringMachine.print_tree: every
# fiber of the thread with its name, its state, what it waits on and its age.
module FiberNameCases
  def test_spin_name_and_name_assignment
    names = run_in_fiber do
      named = UringMachine.spin(name: "worker 1") { UringMachine.receive }
      symbol = UringMachine.spin(name: :poller) { UringMachine.receive }
      plain = UringMachine.spin { Fiber.current.name = "renamed"; UringMachine.receive }
      pass_control
      result = [named.name, named.name.frozen?, symbol.name, plain.name]
      plain.name = nil
      result << plain.name
      [named, symbol, plain].each { |f| f << :done }
      result
    end
    assert_equal ["worker 1", true, "poller", "renamed", nil], names
  end

  def test_a_bad_name_is_a_type_error
    run_in_fiber do
      assert_raises(TypeError) { UringMachine.spin(name: 5) { 1 } }
      assert_raises(TypeError) { Fiber.current.name = Object.new }
    end
  end

  def test_inspect_shows_the_name_where_it_was_spun_and_its_state
    line = __LINE__ + 2
    text, finished = run_in_fiber do
      fiber = UringMachine.spin(name: "conn 7") { UringMachine.receive }
      pass_control
      text = fiber.inspect
      fiber << :done
      fiber.join
      [text, fiber.to_s]
    end
    assert_match(/\A#<Fiber:0x\h+ "conn 7" #{Regexp.escape(__FILE__)}:#{line} \(suspended\)>\z/, text)
    assert_match(/"conn 7" #{Regexp.escape(__FILE__)}:#{line} \(terminated\)>\z/, finished)
  end

  def test_supervise_events_name_their_fiber
    events = run_in_fiber do
      log = []
      UringMachine.spin(name: "poller") { pass_control }
      UringMachine.supervise { |event, fiber| log << "#{event} #{fiber.inspect[/"[^"]*"/]}" }
      log
    end
    assert_equal ['start "poller"', 'stop "poller"'], events
  end

  def test_print_tree_shows_each_fiber_its_state_its_wait_and_its_age
    tree = run_in_fiber do
      reader_pipe, writer_pipe = IO.pipe
      parent = UringMachine.spin(name: "acceptor") do
        UringMachine.spin(name: "inbox") { UringMachine.receive }
        reader = UringMachine.spin(name: "reader") { UringMachine.machine_of(Fiber.current).read(reader_pipe.fileno, +"", 1) }
        UringMachine.spin(name: "joiner") { reader.join }
        UringMachine.receive
      end
      pass_control until parent.children.size == 3 && UringMachine.machine_of(parent).__runqueue__.empty?
      out = StringIO.new
      UringMachine.print_tree(out)
      writer_pipe.write("x")
      parent << :done
      parent.join
      writer_pipe.close
      reader_pipe.close
      out.string
    end
    lines = tree.lines.map(&:chomp)
    assert_match(/\A\s*"acceptor" \S+:\d+  receiving \(mailbox empty\), \d+\.\d s old\z/, lines.grep(/"acceptor"/).first)
    assert_match(/\A\s+"inbox" \S+:\d+  receiving \(mailbox empty\), \d+\.\d s old\z/, lines.grep(/"inbox"/).first)
    assert_match(/\A\s+"reader" \S+:\d+  waiting on read, /, lines.grep(/"reader"/).first)
    assert_match(/\A\s+"joiner" \S+:\d+  joining "reader" /, lines.grep(/"joiner"/).first)
    acceptor_indent = lines.grep(/"acceptor"/).first[/\A */].size
    assert_equal acceptor_indent + 2, lines.grep(/"inbox"/).first[/\A */].size, tree
    assert_match(/  running/, tree)
  end
end

class TestFiberNamesMachine < Minitest::Test
  include FiberNameCases
  include LayerOnMachine

  # With the Machine API a spun fiber starts at the next switch: it already shows where.
  def test_inspect_before_the_fiber_first_runs
    line = __LINE__ + 1
    fiber = UringMachine.machine.spin(name: "queued") { :ran }
    assert_match(/\A#<Fiber:0x\h+ "queued" #{Regexp.escape(__FILE__)}:#{line} \(created\)>\z/, fiber.inspect)
    assert_equal :ran, UringMachine.machine.join(fiber)
  end
end

class TestFiberNamesScheduler < SchedulerTest
  include FiberNameCases
  include LayerOnScheduler
end
