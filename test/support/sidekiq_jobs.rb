# frozen_string_literal: true

# The jobs of test/test_integration_sidekiq.rb, for an in-process
# Launcher and for the sidekiq command (test/support/sidekiq_app.rb). Each leaves its trace in
# redis under its jid, so that what ran, and how often, is counted where every process sees it.
module SidekiqJobs
  RUNS = "um:runs"           # jid => times the job ran to its end
  STARTED = "um:started"     # jid => times it started
  SHUTDOWN = "um:shutdown"   # jid => times Sidekiq::Shutdown was raised in it
  THREADS = "um:threads"     # "pid:thread" => jobs that ran on that thread

  KEYS = [RUNS, STARTED, SHUTDOWN, THREADS].freeze

  # Counts the job +jid+ under +key+, and its thread.
  def self.count(key, jid)
    Sidekiq.redis do |redis|
      redis.pipelined do |pipeline|
        pipeline.hincrby(key, jid, 1)
        pipeline.hincrby(THREADS, "#{::Process.pid}:#{Thread.current.object_id}", 1)
      end
    end
  end

  # Waits +seconds+ (I/O: the fiber sleeps, the others go on), then counts its run.
  class Sleep
    include Sidekiq::Worker

    def perform(seconds)
      sleep seconds
      SidekiqJobs.count(RUNS, jid)
    end
  end

  # Fails: Sidekiq 6.4 then replaces the processor that ran it with a new one (not retried).
  class Failing
    include Sidekiq::Worker
    sidekiq_options retry: false

    def perform
      raise ArgumentError, "a job that fails"
    end
  end

  # Counts its start, then waits far longer than any test runs: still running when the
  # launcher stops, it is what a hard shutdown interrupts and pushes back.
  class Stuck
    include Sidekiq::Worker

    def perform
      SidekiqJobs.count(STARTED, jid)
      sleep 600
      SidekiqJobs.count(RUNS, jid)
    rescue Sidekiq::Shutdown
      SidekiqJobs.count(SHUTDOWN, jid)
      raise
    end
  end
end
