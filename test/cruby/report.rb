# frozen_string_literal: true

require_relative "expected_failures"

module CRubyFiberSuite
  # Prints a line per test as it ends (with the first lines of the reason when it did not pass),
  # then the summary: the failures, the expected failures with their reason, and
  # "N passed, N failed". #ok? is false when a test failed that was not expected to.
  class Report
    LABEL = { pass: "PASS", fail: "FAIL", timeout: "TIMEOUT", skip: "SKIP" }.freeze

    def initialize(out = $stdout, expected = EXPECTED_FAILURES)
      @out = out
      @expected = expected
      @results = []
    end

    def test_done(result)
      @results << result
      label = LABEL.fetch(result.status)
      label = "XFAIL" if expected_failure?(result)
      seconds = result.seconds ? format("%.1fs", result.seconds) : ""
      @out.puts format("%-7s %-64s %6s", label, result.name, seconds)
      result.detail&.each { |line| @out.puts "          #{line}" } unless result.status == :pass
      @out.flush
    end

    def summary(log_dir)
      failed = @results.select { |r| failed?(r) && !expected_failure?(r) }
      xfailed = @results.select { |r| expected_failure?(r) }
      xpassed = @results.select { |r| r.status == :pass && @expected.key?(r.name) }
      skipped = @results.select { |r| r.status == :skip }
      passed = @results.count { |r| r.status == :pass }

      @out.puts
      list("Failed", failed) { |r| "#{r.name}#{' (timed out)' if r.status == :timeout}: #{headline(r)}" }
      list("Expected failures", xfailed) { |r| "#{r.name}: #{@expected[r.name]}" }
      list("Passed although listed as expected failures (remove them from test/cruby/expected_failures.rb)",
           xpassed, &:name)
      list("Skipped", skipped) { |r| "#{r.name}: #{headline(r)}" }
      @out.puts "Full output of each test: #{log_dir}" unless failed.empty?
      extra = [("#{xfailed.size} expected to fail" unless xfailed.empty?),
               ("#{skipped.size} skipped" unless skipped.empty?)].compact
      @out.puts "#{passed} passed, #{failed.size} failed#{extra.map { |e| ", #{e}" }.join}"
      @out.flush
      @ok = failed.empty?
    end

    def ok?
      @ok
    end

    private

    def failed?(result)
      %i[fail timeout].include?(result.status)
    end

    def expected_failure?(result)
      failed?(result) && @expected.key?(result.name)
    end

    # The first line of the reason; for a child Ruby's failure ("pid 123 exit 1", then its output
    # as "| ..." lines), the first line of that output naming an exception.
    def headline(result)
      first, *rest = result.detail
      return first.to_s unless first&.match?(/\Apid \d+ /)

      error = rest.find { |l| l.match?(/\A\| .*\b[A-Z]\w*(Error|Exception)\b/) }
      error ? "#{first}: #{error.delete_prefix('| ').strip}" : first
    end

    def list(title, results, &block)
      return if results.empty?

      @out.puts "#{title}:"
      results.each { |r| @out.puts "  #{block.call(r)}" }
    end
  end
end
