# frozen_string_literal: true

# UringMachine::BlockingWorkers: the scheduler's threads for work no ring op can do.

module UringMachine
  # Threads (no scheduler of their own) that run blocking work for fibers: getaddrinfo,
  # blocking_operation_wait (3.4+), waitpid with options the ring cannot express. The calling
  # fiber waits on a Thread::Queue, which parks only that fiber under a scheduler.
  #
  # The pool grows to the burst: a job that finds no idle thread starts one, up to +maximum+
  # threads (further jobs queue up). A thread that stayed idle for +idle_timeout+ seconds exits.
  class BlockingWorkers
    # Defaults for new pools, changeable for the whole process.
    @maximum = 64
    @idle_timeout = 10.0

    class << self
      attr_accessor :maximum, :idle_timeout
    end

    Job = Struct.new(:work, :result)

    attr_reader :maximum, :idle_timeout

    def initialize(maximum: self.class.maximum, idle_timeout: self.class.idle_timeout)
      self.maximum = maximum
      self.idle_timeout = idle_timeout
      @lock = Thread::Mutex.new
      @wakeup = Thread::ConditionVariable.new
      @jobs = []
      @threads = []
      @idle = 0 # threads waiting for a job (woken ones too, until they took one)
      @closed = false
    end

    # At most this many threads at a time (at least 1).
    def maximum=(count)
      raise ArgumentError, "maximum must be a positive Integer, not #{count.inspect}" unless count.is_a?(Integer) && count.positive?

      @maximum = count
    end

    # Seconds an idle thread waits for a job before it exits.
    def idle_timeout=(seconds)
      raise ArgumentError, "idle_timeout must be a positive number, not #{seconds.inspect}" unless seconds.is_a?(Numeric) && seconds.positive?

      @idle_timeout = seconds
    end

    # Runs +work+ (anything with #call) exactly once on a worker; returns its value or raises
    # its exception in the caller.
    # An interrupt (Fiber#raise, a timeout, an exception pending from an earlier op) does not
    # return before the work has run: Ruby 3.4+ hands blocking_operation_wait work that points
    # into the caller's frame, so calling it after the hook returned would crash. The interrupt
    # is raised once the work is done.
    def run(work)
      job = Job.new(work, Thread::Queue.new)
      submit(job)
      outcome = nil
      begin
        outcome = job.result.pop
      ensure
        outcome ||= pop_uninterrupted(job.result)
      end
      value, error = outcome
      raise error if error

      value
    end

    # How many threads the pool has now.
    def size
      @lock.synchronize { @threads.size }
    end

    # How many of them wait for a job.
    def idle
      @lock.synchronize { @idle }
    end

    # Lets the workers finish the queued jobs and exit; later jobs raise ClosedQueueError.
    def shutdown
      threads = @lock.synchronize do
        @closed = true
        @wakeup.broadcast
        @threads.dup
      end
      threads.each(&:join)
    end

    private

    def pop_uninterrupted(queue)
      queue.pop
    rescue Exception # rubocop:disable Lint/RescueException -- the first interrupt is on its way
      retry
    end

    def submit(job)
      @lock.synchronize do
        raise ClosedQueueError, "the blocking workers were shut down" if @closed

        @jobs << job
        # Every queued job needs a thread of its own: start one unless an idle thread is left
        # for this job once the jobs before it are taken.
        @threads << Thread.new { work_loop } if @jobs.size > @idle && @threads.size < @maximum
        @wakeup.signal
      end
    end

    def work_loop
      Thread.current.report_on_exception = false
      while (job = take_job)
        begin
          job.result << [job.work.call, nil]
        rescue Exception => e # rubocop:disable Lint/RescueException -- handed to the caller
          job.result << [nil, e]
        end
      end
    end

    # The longest idle wait with a timeout (about 68 years); a longer one has none.
    LONGEST_WAIT = 2**31
    private_constant :LONGEST_WAIT

    # The next job, or nil when this thread should exit: the pool was shut down (and no job is
    # left), or no job came for idle_timeout seconds. Leaves @threads when it returns nil.
    def take_job
      @lock.synchronize do
        idle_since = monotonic
        loop do
          return @jobs.shift unless @jobs.empty?

          waited = monotonic - idle_since
          if @closed || waited >= @idle_timeout
            @threads.delete(Thread.current)
            return nil
          end
          @idle += 1
          begin
            left = @idle_timeout - waited
            # ConditionVariable#wait raises RangeError for Infinity and past time_t: an idle
            # timeout that long waits for a job without one.
            @wakeup.wait(@lock, left < LONGEST_WAIT ? left : nil)
          ensure
            @idle -= 1
          end
        end
      end
    end

    def monotonic
      ::Process.clock_gettime(::Process::CLOCK_MONOTONIC)
    end
  end
end
