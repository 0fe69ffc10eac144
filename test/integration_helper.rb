# frozen_string_literal: true

require_relative "scheduler_helper"
require_relative "support/local_server"

# For test/test_integration_*: real clients (net/http, OpenSSL, pg, redis, child processes)
# against real servers on loopback, under the scheduler, with a ticker fiber that proves the
# event loop kept running. A server whose binary is missing, or a client library that does not
# load on this Ruby, skips the test with the reason printed, never silently.
module IntegrationTestHelper
  @servers = {}
  @lock = Thread::Mutex.new

  class << self
    # One server of +klass+ for the whole run (started on first use, stopped at exit), or the
    # LocalServer::Unavailable / error its start raised.
    def server(klass)
      @lock.synchronize do
        @servers.fetch(klass) do
          @servers[klass] = begin
            klass.start
          rescue StandardError => e
            e
          end
        end
      end
    end

    def stop_servers
      @servers.each_value { |server| server.stop if server.respond_to?(:stop) }
      @servers.clear
    end
  end

  Minitest.after_run { IntegrationTestHelper.stop_servers }

  # The shared server of +klass+; skips the test if it cannot be had here, raises if it failed.
  def server(klass)
    server = IntegrationTestHelper.server(klass)
    skip_with_reason(server.message) if server.is_a?(LocalServer::Unavailable)
    raise server if server.is_a?(Exception)

    server
  end

  # Requires +library+, or skips naming the Debian package that provides it (+note+: why it
  # may be missing).
  def require_library(library, package, note: nil)
    require library
  rescue LoadError => e
    skip_with_reason("#{library} does not load on Ruby #{RUBY_VERSION} (Debian package #{package}" \
                     "#{note && "; #{note}"}): #{e.message}")
  end

  # A skip whose reason shows even without --verbose.
  def skip_with_reason(reason)
    warn "\nSKIP #{self.class}##{name}: #{reason}"
    skip reason
  end

  # Call in the scheduler thread's root fiber: runs the block in a fiber next to a ticker fiber
  # that ticks every +interval+ seconds until the block returns, runs the event loop until both
  # finished, and returns the block's value and the number of ticks meanwhile.
  def run_with_ticker(interval = 0.005)
    ticker = { ticks: 0, stop: false }
    value = nil
    schedule_fiber do
      until ticker[:stop]
        sleep interval
        ticker[:ticks] += 1
      end
    end
    schedule_fiber do
      value = yield
    ensure
      ticker[:stop] = true
    end
    Fiber.scheduler.run
    [value, ticker[:ticks]]
  end

  # Call in a fiber: runs the block in +count+ fibers (given the index) and returns their
  # values, in order, once all finished. An error in one is raised here.
  def in_fibers(count)
    results = Thread::Queue.new
    count.times do |i|
      Fiber.schedule do
        results << [i, yield(i), nil]
      rescue Exception => e # rubocop:disable Lint/RescueException -- handed to the caller
        results << [i, nil, e]
      end
    end
    values = Array.new(count)
    count.times do
      i, value, error = results.pop
      raise error if error

      values[i] = value
    end
    values
  end
end

class IntegrationTest < SchedulerTest
  include IntegrationTestHelper
end
