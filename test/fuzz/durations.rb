# frozen_string_literal: true

module Fuzz
  # Part "durations": every timed API given odd durations (huge Integers, 1e20, NaN, negative,
  # infinite, Rational, String, nil, ...), each case in a forked child. The outcome must be a
  # Ruby exception, a return (a short duration), or a wait that another thread then interrupts
  # (Machine#schedule with an exception). A child that dies without saying (a `fatal`, a Rust
  # panic, a crash) is a defect, and so is a wait nothing can end, or a duration of a second
  # or more that returns or times out before the interrupt (issue 18, item 3).
  class Durations
    WAKE_AFTER = 0.3 # seconds: then the case is interrupted
    GIVE_UP_AFTER = 15 # seconds without an outcome: a hang

    # The error raised into a waiting case.
    class Woken < StandardError; end

    VALUES = [2**62, 2**63, 2**64, 10**30, -(2**64), 1e12, 1e20, Float::MAX, Float::NAN, -1, -0.5, Float::INFINITY,
              -Float::INFINITY, Rational(1, 1000), Rational(10**30, 7), 1e-10, 0, "0.001", nil].freeze

    # name => [needs a scheduler, the call]
    APIS = {
      "sleep" => [true, ->(v, _) { sleep(v) }],
      "Machine#sleep" => [false, ->(v, m) { m.sleep(v) }],
      "Machine#timeout" => [false, ->(v, m) { m.timeout(v, Fuzz::Timeout) { m.suspend } }],
      "Timeout.timeout" => [true, ->(v, _) { ::Timeout.timeout(v, Fuzz::Timeout) { sleep } }],
      "Queue#pop(timeout:)" => [true, ->(v, _) { Thread::Queue.new.pop(timeout: v) }],
      "IO#wait_readable" => [true, ->(v, _) { Fuzz::Durations.idle_pipe { |r| r.wait_readable(v) } }],
      "IO.select" => [true, ->(v, _) { Fuzz::Durations.idle_pipe { |r| IO.select([r], nil, nil, v) } }],
      "Scheduler#block" => [true, ->(v, _) { Fiber.scheduler.block(:fuzz, v) }],
      "ConditionVariable#wait" => [true, ->(v, _) { Mutex.new.then { |m| m.synchronize { ConditionVariable.new.wait(m, v) } } }],
      "Mutex#sleep" => [true, ->(v, _) { Mutex.new.then { |m| m.synchronize { m.sleep(v) } } }]
    }.freeze

    # Yields the read end of a pipe that stays empty and open: its write end is held (and closed)
    # here, since one GC could close a write end nothing refers to, and the read end would then
    # be readable (EOF) at once (seen as an IO.select with 1e12 that "returned" after 5 ms).
    def self.idle_pipe
      r, w = IO.pipe
      yield r
    ensure
      [r, w].each { |io| io&.close }
    end

    def self.apis
      APIS.reject { |name, _| name == "Queue#pop(timeout:)" && !Fuzz.queue_pop_timeout? }
    end

    def initialize(rng, report, index)
      @rng = rng
      @report = report
      @name = self.class.apis.keys[index % self.class.apis.size]
      @needs_scheduler, @call = self.class.apis[@name]
    end

    def run
      cases = (VALUES + random_values).map { |value| [value, start(value)] }
      cases.each do |value, (pid, out, err)|
        judge(value, *outcome(pid, out, err), fatal(err), File.read(err.path))
      ensure
        err.close!
      end
    end

    private

    def random_values
      [@rng.rand * (10**@rng.rand(-9..25)), 2**@rng.rand(30..90), -@rng.rand, Rational(@rng.rand(1..10**20), @rng.rand(1..10**6))]
    end

    # Forks the case's child; returns its pid, the pipe of its outcome and the file of its stderr.
    def start(value)
      r, w = IO.pipe
      err = Tempfile.new("um-fuzz-durations")
      pid = fork do
        r.close
        $stderr.reopen(err.path, "w")
        run_case(value, w)
      end
      w.close
      [pid, r, err]
    end

    # In the child: runs the call in a fiber, interrupts it after WAKE_AFTER, writes the outcome.
    def run_case(value, out)
      Fiber.set_scheduler(UringMachine::Scheduler.new) if @needs_scheduler
      machine = @needs_scheduler ? Fiber.scheduler.machine : UringMachine.machine
      fiber = spawn(machine) do
        started = Fuzz.now
        begin
          @call.call(value, machine)
          out.syswrite("returned #{Fuzz.now - started}\n")
        rescue Woken
          out.syswrite("woken\n")
        rescue Exception => e # rubocop:disable Lint/RescueException -- the outcome
          out.syswrite("raised #{Fuzz.now - started} #{e.class}: #{e.message.lines.first&.chomp}\n")
        end
      end
      Thread.new do
        sleep(WAKE_AFTER)
        machine.schedule(fiber, Woken.new)
      end
      @needs_scheduler ? Fiber.set_scheduler(nil) : machine.join(fiber)
      exit!(0)
    end

    def spawn(machine, &block)
      @needs_scheduler ? Fiber.schedule(&block) : machine.spin(&block)
    end

    # [the child's line (nil if none), its status, whether it had to be killed]. A child that
    # printed a fatal error is not waited for: it may never end.
    def outcome(pid, out, err)
      give_up = Fuzz.now + GIVE_UP_AFTER
      line = out.gets if out.wait_readable(0.05) until line || out.eof? || fatal(err) || Fuzz.now > give_up
      ended = Process.wait2(pid, Process::WNOHANG) unless line
      killed = line.nil? && ended.nil? && Process.kill(:KILL, pid).positive?
      [line&.chomp, (ended || Process.wait2(pid)).last, killed]
    ensure
      out.close
    end

    # The line that says the child died of a `fatal` (a Rust panic becomes one), if any.
    def fatal(err)
      lines = File.read(err.path).lines
      lines.find { |l| l.include?("(fatal)") } ||
        lines.each_cons(2).find { |l, _| l.include?("panicked at") }&.join(" ")
    end

    def judge(value, line, status, killed, fatal, stderr)
      what = "#{@name} with #{value.inspect}"
      @report.count(:duration_cases)
      if fatal
        @report.defect(:fatal, "#{what}: #{fatal.strip}")
      elsif killed
        @report.defect(:hang, "#{what}: no outcome in #{GIVE_UP_AFTER}s, not even after the interrupt")
      elsif line.nil?
        @report.defect(:fatal, "#{what}: the child died without an outcome (#{status.inspect}): #{stderr.lines.last&.strip}")
      elsif early?(value, line)
        @report.defect(:early_sleep, "#{what}: #{line}")
      end
    end

    # A duration of a second or more that returned or timed out before the interrupt.
    def early?(value, line)
      long = value.is_a?(Numeric) && !(value.is_a?(Float) && value.nan?) && value >= 1
      long && (line.start_with?("returned") || line.include?("Fuzz::Timeout"))
    end
  end
end
