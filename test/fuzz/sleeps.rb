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

  # The waits a sleeper makes before it sleeps, each with a timeout that something else races
  # to end first.
  class Waits
    attr_reader :queue

    def initialize(machine, scheduler, rng)
      @machine = machine
      @scheduler = scheduler
      @rng = rng
      @queue = Thread::Queue.new
      @mutex = Thread::Mutex.new
      @condition = Thread::ConditionVariable.new
      @signaller = nil
    end

    def kinds
      @scheduler ? %i[queue condition pipe wait_readable none] : %i[pipe poll none]
    end

    # A short wait of +kind+ on +pipe+'s read end (or the shared queue and condition).
    def wait(kind, pipe, seconds)
      case kind
      when :queue then pop(seconds)
      when :condition then condition_wait(seconds)
      when :wait_readable then pipe.first.wait_readable(seconds) && drain(pipe.first)
      when :pipe then @machine.timeout(seconds, Fuzz::Timeout) { @machine.read(pipe.first, +"", 64) }
      when :poll then @machine.timeout(seconds, Fuzz::Timeout) { @machine.poll(pipe.first, IO::READABLE) }
      end
    rescue Fuzz::Timeout
      nil
    end

    # Signals the condition from the outside thread (see Sleeps#start).
    def signal
      @mutex.synchronize { @rng.rand(2).zero? ? @condition.signal : @condition.broadcast }
    end

    private

    # Not Mutex#synchronize: an interrupt that arrives while ConditionVariable#wait takes the
    # mutex back leaves it unlocked (CRuby's behaviour), and synchronize would then raise
    # ThreadError unlocking it.
    def condition_wait(seconds)
      @mutex.lock
      begin
        @condition.wait(@mutex, seconds)
      ensure
        @mutex.unlock if @mutex.owned?
      end
    end

    def pop(seconds)
      return @queue.pop(timeout: seconds) if Fuzz.queue_pop_timeout?

      ::Timeout.timeout(seconds, Fuzz::Timeout) { @queue.pop }
    end

    def drain(io)
      io.read_nonblock(64, exception: false)
    end
  end

  # One sleeping fiber of the sleeps part.
  class Sleeper
    def initialize(index, machine, waits, pipe, rng, report, scheduler:, deadline:)
      @label = "sleeper #{index}"
      @machine = machine
      @waits = waits
      @pipe = pipe
      @rng = rng
      @report = report
      @scheduler = scheduler
      @deadline = deadline
    end

    def run
      while Fuzz.now < @deadline
        begin
          @waits.wait(@waits.kinds.sample(random: @rng), @pipe, @rng.rand(100..3000) / 1e6)
          checked_sleep(@rng.rand(200..8000) / 1e6)
        rescue Fuzz::Interrupt, Fuzz::Timeout, IOError
          nil # an interrupted or timed out sleep is not checked; a closed pipe stays closed
        end
      end
    end

    private

    def checked_sleep(seconds)
      start = Fuzz.now
      how = timed_sleep(seconds)
      slept = Fuzz.now - start
      @report.count(:sleeps_checked)
      return if slept >= seconds - Sleeps::TOLERANCE

      @report.defect(:early_sleep, "#{@label}: #{how}(#{seconds}) returned after #{(slept * 1e6).round(1)} µs")
    end

    # Sleeps, bare or inside a longer timeout; returns how.
    def timed_sleep(seconds)
      how = @scheduler && @rng.rand(3).positive? ? "sleep" : "Machine#sleep"
      nap = proc { how == "sleep" ? sleep(seconds) : @machine.sleep(seconds) }
      case @rng.rand(4)
      when 0
        @machine.timeout(seconds * 3, Fuzz::Timeout, &nap)
        "#{how} in Machine#timeout"
      when 1
        return timed_sleep(seconds) unless @scheduler

        ::Timeout.timeout(seconds * 3, Fuzz::Timeout, &nap)
        "#{how} in Timeout.timeout"
      else
        nap.call
        how
      end
    end
  end
end
