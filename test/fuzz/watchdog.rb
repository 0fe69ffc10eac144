# frozen_string_literal: true

module Fuzz
  # A thread that ends the worker when an episode runs for longer than +limit+ seconds: it
  # prints where each tracked fiber is, reports the episode's hang to the campaign, and exits
  # (the campaign goes on with the next episode in a fresh worker).
  class Watchdog
    def initialize(limit, results)
      @limit = limit
      @results = results
      @lock = Mutex.new
      @armed = nil
      @thread = Thread.new { watch }
    end

    def arm(episode, report)
      @lock.synchronize { @armed = [episode, report, Fuzz.now] }
    end

    def disarm
      @lock.synchronize { @armed = nil }
    end

    private

    def watch
      loop do
        sleep(1)
        episode, report, since = @lock.synchronize { @armed }
        bite(episode, report) if since && Fuzz.now - since > @limit
      end
    end

    def bite(episode, report)
      where = report.tracked.select { |_, fiber| fiber.alive? }.map do |label, fiber|
        "#{label} at #{(fiber.backtrace || []).reject { |l| l.include?("/lib/uring_machine/") }.first(2).join(' <- ')}"
      end
      $stderr.puts "fuzz: episode #{episode} stuck for over #{@limit}s; fibers still alive:", where.map { |w| "  #{w}" }
      report.defect(:hang, "stuck for over #{@limit}s; alive: #{where.first(6).join('; ')}")
      @results.puts(JSON.generate({ "done" => episode }.merge(report.to_h)))
      @results.flush
      $stderr.flush
      exit!(3)
    end
  end
end
