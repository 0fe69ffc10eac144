# frozen_string_literal: true

module Fuzz
  # Part "sleeps": fibers that wait on something with a timeout that others race to end (a
  # Queue another thread pushes to, a ConditionVariable it signals, a pipe a fiber writes to
  # and the chaos closes), then sleep a random short time, while the chaos and another thread
  # interrupt them. A sleep that returns without an exception must have lasted its duration
  # (monotonic clock, from the sleep's own start): a wake-up meant for an earlier wait must not
  # end it (issue 18, item 2). Under the scheduler (Kernel#sleep, Timeout.timeout) or through
  # the Machine API (Machine#sleep, Machine#timeout).
  class Sleeps
    # The clock reads a few ns apart from the kernel's timer; a wrong wake-up is off by far more.
    TOLERANCE = 1e-6

    def initialize(rng, report, _index = nil)
      @rng = rng
      @report = report
    end

    def run
      @deadline = Fuzz.now + @rng.rand(0.15..0.4)
      @pipes = []
      @rng.rand(3).zero? ? run_on_machine : run_under_scheduler
    ensure
      @pipes.flatten.each { |io| io.close unless io.closed? }
    end

    private

    def run_under_scheduler
      scheduler = UringMachine::Scheduler.new
      Fiber.set_scheduler(scheduler)
      start(scheduler.machine, scheduler: true)
      Fiber.set_scheduler(nil)
    end

    def run_on_machine
      machine = UringMachine.machine
      fibers = start(machine, scheduler: false)
      machine.join(*fibers)
    end

    # Starts the sleepers, the pipe ticker, the chaos and the outside thread; returns the fibers.
    def start(machine, scheduler:)
      spawn = scheduler ? ->(&b) { Fiber.schedule(&b) } : ->(&b) { machine.spin(&b) }
      waits = Waits.new(machine, scheduler, Random.new(@rng.rand(2**32)))
      sleepers = Array.new(@rng.rand(3..8)) do |i|
        pipe = IO.pipe.each(&:binmode)
        @pipes << pipe
        sleeper = Sleeper.new(i, machine, waits, pipe, Random.new(@rng.rand(2**32)), @report,
                              scheduler: scheduler, deadline: @deadline)
        spawn.call { @report.guard("sleeper #{i}") { sleeper.run } }
      end
      ticker = spawn.call { @report.guard("ticker") { tick(machine) } }
      outsider = CrossThread.new(machine, Random.new(@rng.rand(2**32)), @report, sleepers, until: @deadline,
                                 pokes: scheduler ? [-> { waits.queue.push(:token) }, -> { waits.signal }] : [])
      chaos = Chaos.new(machine, Random.new(@rng.rand(2**32)), victims: sleepers, closes: false)
      chaos_fiber = spawn.call do
        @report.guard("chaos") { chaos.run }
        outsider.stop
      end
      [*sleepers, ticker, chaos_fiber]
    end

    # Writes to a sleeper's pipe now and then, and closes one once in a while.
    def tick(machine)
      while Fuzz.now < @deadline
        machine.sleep(@rng.rand * 0.002)
        _, w = @pipes.sample(random: @rng)
        next if w.closed?

        @rng.rand(40).zero? ? w.close : w.write_nonblock("!", exception: false)
      end
    end
  end
end
