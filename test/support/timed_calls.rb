# frozen_string_literal: true

require_relative "pipes"

# Every timed call -- plain Ruby's, the same calls under UringMachine::Scheduler, the
# scheduler's own hooks, the Machine API -- and the odd durations test_durations.rb gives them.
# The test loads this file for plain Ruby's outcomes; for ours it runs it as a child process
# (`ruby timed_calls.rb SIDE ROW`), so that a Rust panic (`fatal`) ends the child, not the run.
#
# An outcome is :returned, the name of the exception class raised, or :asleep: still waiting
# in the call after a reference moment that outlasts every short duration of the table (then
# interrupted: StillAsleep is raised into it, and it must end). Short durations are at most
# 1/3 s, long ones at least 10**12 s, so "still asleep" does not depend on the host's speed.
# Under the scheduler and on the Machine, the moment is a sleep on the same ring, started
# after every call waits: its timer fires after theirs, and the fibers woken first run first.
# What an interrupted call then raises is not its outcome (CRuby 3.1's Mutex#sleep under a
# scheduler, for one, leaves the mutex unlocked when its kernel_sleep raises).
module TimedCalls
  extend Pipes

  # Raised into a call still waiting after the moment.
  class StillAsleep < Exception; end # rubocop:disable Lint/InheritException

  # Not Numeric, but Float() takes it (Thread#join and Queue#pop do).
  class WithToF
    def to_f = 0.01
  end

  # Not Numeric, but CRuby's time interval conversion takes it (Kernel#sleep does).
  class WithDivmod
    def divmod(_other) = [0, 0.01]
  end

  # Numeric with to_f only: Float() takes it, Numeric#divmod (which needs #/) does not.
  class NumericWithToF < Numeric
    def to_f = 0.01
  end

  VALUES = {
    "2**62" => 2**62,
    "2**63-1" => 2**63 - 1,
    "2**63" => 2**63,
    "2**64" => 2**64,
    "10**30" => 10**30,
    "1e12" => 1e12,
    "1e20" => 1e20,
    "Float::INFINITY" => Float::INFINITY,
    "-Float::INFINITY" => -Float::INFINITY,
    "Float::NAN" => Float::NAN,
    "-1" => -1,
    "-0.0" => -0.0,
    "0" => 0,
    "Rational(1,3)" => Rational(1, 3),
    "Rational(-1,3)" => Rational(-1, 3),
    "nil" => nil,
    '"1"' => "1",
    "Object.new" => Object.new,
    "WithToF" => WithToF.new,
    "WithDivmod" => WithDivmod.new,
    "NumericWithToF" => NumericWithToF.new
  }.freeze

  # Outlasts every short duration of VALUES (1/3 s).
  MOMENT = 0.5
  # Plain Ruby's threads are not woken in timer order: more room for the short ones.
  PLAIN_MOMENT = 1.5
  # What the block of a timeout waits on: longer than any test.
  LONG = 10**9

  def self.ruby_at_least?(version)
    (RUBY_VERSION.split(".").map(&:to_i) <=> version.split(".").map(&:to_i)) >= 0
  end

  # CRuby's timed methods: run without a scheduler (the reference) and under ours.
  CRUBY = {
    "sleep" => ->(v) { sleep(v) },
    "Mutex#sleep" => ->(v) { m = Mutex.new; m.synchronize { m.sleep(v) } },
    "ConditionVariable#wait" => lambda do |v|
      m = Mutex.new
      m.synchronize { ConditionVariable.new.wait(m, v) }
    end,
    "IO.select" => ->(v) { with_pipe { |r, _| IO.select([r], nil, nil, v) } },
    "IO#wait_readable" => ->(v) { with_pipe { |r, _| r.wait_readable(v) } },
    "Thread#join" => lambda do |v|
      thread = Thread.new { sleep }
      begin
        thread.join(v)
      ensure
        thread.kill
      end
    end,
    "Timeout.timeout" => ->(v) { Timeout.timeout(v) { sleep(LONG) } }
  }.merge(
    ruby_at_least?("3.2") ? {
      "Queue#pop" => ->(v) { Thread::Queue.new.pop(timeout: v) },
      "IO#timeout" => ->(v) { with_pipe { |r, _| r.timeout = v; r.read(1) } }
    } : {}
  ).freeze

  # The scheduler's own hooks, called directly.
  HOOKS = {
    "Scheduler#kernel_sleep" => ->(v) { Fiber.scheduler.kernel_sleep(v) },
    "Scheduler#block" => ->(v) { Fiber.scheduler.block(:blocker, v) },
    "Scheduler#timeout_after" => ->(v) { Fiber.scheduler.timeout_after(v, RuntimeError, "late") { sleep(LONG) } },
    "Scheduler#io_wait" => ->(v) { with_pipe { |r, _| Fiber.scheduler.io_wait(r, IO::READABLE, v) } }
  }.freeze

  # The Machine API, given the machine.
  MACHINE = {
    "Machine#sleep" => ->(m, v) { m.sleep(v) },
    "Machine#timeout" => ->(m, v) { m.timeout(v) { m.sleep(LONG) } },
    "UringMachine.cancel_after" => ->(m, v) { UringMachine.cancel_after(v) { m.sleep(LONG) } },
    "UringMachine.move_on_after" => ->(m, v) { UringMachine.move_on_after(v) { m.sleep(LONG) } }
  }.freeze

  def self.outcome
    yield
    :returned
  rescue StillAsleep
    :asleep
  rescue Exception => e # rubocop:disable Lint/RescueException
    e.class.name
  end

  # Plain Ruby: one thread per value, all at once.
  def self.plain(row)
    call = CRUBY.fetch(row)
    outcomes = {}
    threads = VALUES.map do |label, value|
      Thread.new do
        Thread.current.report_on_exception = false
        outcomes[label] = outcome { call.call(value) }
      end
    end
    Thread.pass until threads.all? { |t| !t.alive? || t.status == "sleep" }
    sleep(PLAIN_MOMENT)
    asleep = VALUES.keys.zip(threads).select { |_, t| t.alive? }
    asleep.each { |_, t| t.raise(StillAsleep) }
    threads.each(&:join)
    outcomes.merge(asleep.to_h { |label, _| [label, :asleep] })
  end

  # Under a fresh UringMachine::Scheduler: one fiber per value, all at once. Then proves the
  # scheduler still works.
  def self.scheduled(call)
    Thread.new do
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      outcomes = {}
      Fiber.schedule do
        fibers = VALUES.map do |label, value|
          Fiber.schedule { outcomes[label] = outcome { call.call(value) } }
        end
        sleep(MOMENT)
        asleep = VALUES.keys.zip(fibers).select { |_, f| f.alive? }
        asleep.each { |_, f| f.raise(StillAsleep) }
        sleep(0.001) while fibers.any?(&:alive?)
        asleep.each { |label, _| outcomes[label] = :asleep }
        outcomes["(afterwards)"] = with_pipe { |r, w| w << "ok"; sleep(0.001); r.read(2) }
      end
      Fiber.set_scheduler(nil)
      outcomes
    end.value
  end

  # On a fresh Machine: one spun fiber per value, all at once. Then proves the machine still
  # works.
  def self.on_machine(call)
    m = UringMachine.machine
    outcomes = {}
    fibers = VALUES.map do |label, value|
      m.spin { outcomes[label] = outcome { call.call(m, value) } }
    end
    m.snooze
    m.sleep(MOMENT)
    asleep = VALUES.keys.zip(fibers).select { |_, f| f.alive? }
    asleep.each { |_, f| m.schedule(f, StillAsleep.new) }
    m.join(*fibers)
    asleep.each { |label, _| outcomes[label] = :asleep }
    outcomes["(afterwards)"] = m.sleep(0.001)
    outcomes
  end

  # The child process: SIDE (cruby, hooks, machine) and ROW; prints "label\toutcome" lines.
  def self.main(side, row)
    require "timeout"
    require "uring_machine"
    outcomes = case side
               when "cruby" then scheduled(CRUBY.fetch(row))
               when "hooks" then scheduled(HOOKS.fetch(row))
               when "machine" then on_machine(MACHINE.fetch(row))
               end
    outcomes.each { |label, result| puts "#{label}\t#{result}" }
  end
end

TimedCalls.main(*ARGV) if $PROGRAM_NAME == __FILE__
