# frozen_string_literal: true

# One part of the fuzz campaign, in a process of its own (campaign.rb starts it):
#
#   ruby -Ilib test/fuzz/worker.rb PART SEED FIRST_EPISODE SECONDS [once]
#
# Runs episodes FIRST_EPISODE, FIRST_EPISODE + 1, ... until SECONDS have passed (just the first
# one with "once"), and writes a JSON line to stdout when each starts ({"start": n}) and ends
# ({"done": n, "defects": [[kind, detail], ...], "counts": {...}}). Everything else goes to
# stderr. UM_FUZZ_HANG_SECONDS (default 30): the watchdog's limit per episode.
require "json"
require_relative "episodes"

module Fuzz
  # Runs the episodes of one part and reports each.
  class Worker
    # Ruby 3.1 never returns fiber stacks to the system (its fiber pool only grows) and frees
    # them only when the Fiber is collected: past this many memory mappings, the worker makes
    # way for a fresh one (exit status RECYCLE) before Fiber.new fails for want of mappings.
    MAX_MAPPINGS = 20_000
    RECYCLE = 4

    def initialize(part, seed, first, seconds, once)
      @part = part
      @klass = Fuzz.const_get(PARTS.fetch(part).first)
      @seed = seed
      @first = first
      @deadline = Fuzz.now + seconds
      @once = once
      @results = $stdout.dup
      $stdout.reopen($stderr)
    end

    def run
      warm_up
      watchdog = Watchdog.new(Float(ENV.fetch("UM_FUZZ_HANG_SECONDS", "30")), @results)
      resources = Resources.new
      @first.step do |index|
        emit("start" => index)
        report = Report.new
        watchdog.arm(index, report)
        episode(index, report)
        watchdog.disarm
        resources.check(report)
        emit({ "done" => index }.merge(report.to_h))
        break if @once || Fuzz.now >= @deadline
        exit(RECYCLE) if mappings > MAX_MAPPINGS
      end
    end

    private

    def episode(index, report)
      report.guard("episode") { @klass.new(Fuzz.rng(@seed, @part, index), report, index).run }
    ensure
      Fiber.set_scheduler(nil) if Fiber.scheduler
    end

    # The thread's ring, and what the first Machine and Scheduler install, exist before the
    # baseline of fds and threads is taken.
    def warm_up
      UringMachine.machine
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule { sleep(0.001) }
      Fiber.set_scheduler(nil)
      Fuzz.compaction?
    end

    def mappings
      File.foreach("/proc/self/maps").count
    end

    def emit(fields)
      @results.puts(JSON.generate(fields))
      @results.flush
    end
  end
end

part, seed, first, seconds, once = ARGV
Fuzz::Worker.new(part, Integer(seed), Integer(first), Float(seconds), once == "once").run
