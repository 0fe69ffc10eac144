# frozen_string_literal: true

module UringMachine
  # A few threads (no scheduler of their own) that run blocking work for fibers. The calling
  # fiber waits on a Thread::Queue, which parks only that fiber under a scheduler.
  class BlockingWorkers
    MAXIMUM = 8

    Job = Struct.new(:work, :result)

    def initialize
      @jobs = Thread::Queue.new
      @threads = []
      @idle = 0
      @lock = Thread::Mutex.new
    end

    # Runs +work+ (anything with #call) exactly once on a worker; returns its value or raises
    # its exception in the caller.
    # An interrupt (Fiber#raise, a timeout, an exception pending from an earlier op) does not
    # return before the work has run: Ruby 3.4+ hands blocking_operation_wait work that points
    # into the caller's frame, so calling it after the hook returned would crash. The interrupt
    # is raised once the work is done.
    def run(work)
      job = Job.new(work, Thread::Queue.new)
      spawn_worker_if_needed
      @jobs << job
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

    # Lets the workers finish their jobs and exit.
    def shutdown
      @jobs.close
      @threads.each(&:join)
    end

    private

    def pop_uninterrupted(queue)
      queue.pop
    rescue Exception # rubocop:disable Lint/RescueException -- the first interrupt is on its way
      retry
    end

    def spawn_worker_if_needed
      @lock.synchronize do
        return if @idle.positive? || @threads.size >= MAXIMUM

        @threads << Thread.new { work_loop }
        @idle += 1
      end
    end

    def work_loop
      Thread.current.report_on_exception = false
      while (job = @jobs.pop)
        @lock.synchronize { @idle -= 1 }
        begin
          job.result << [job.work.call, nil]
        rescue Exception => e # rubocop:disable Lint/RescueException -- handed to the caller
          job.result << [nil, e]
        ensure
          @lock.synchronize { @idle += 1 }
        end
      end
    end
  end
end
