# frozen_string_literal: true

require "rbconfig"

module CRubyFiberSuite
  # Runs one test method of CRuby's suite in a Ruby process of its own (a process group of its
  # own, so that whatever it spawns goes with it) and a time limit, the way `make test-all` runs
  # it: through test/runner.rb (CRuby's own runner, tool/lib/test/unit.rb, with the settings and
  # checkers of tool/test/init.rb). Its output goes to a log file; the result says pass / fail /
  # timeout / skip.
  class IsolatedTest
    Result = Struct.new(:name, :status, :seconds, :detail, :log) # status: :pass, :fail, :timeout, :skip

    SUMMARY = /^(\d+) tests, \d+ assertions, (\d+) failures, (\d+) errors, (\d+) skips/
    DETAIL_LINES = 5

    def initialize(src, work_dir, timeout)
      @load_path = %w[tool/lib test/lib].map { |d| File.join(src, d) }.select { |d| File.directory?(d) }
      runner = File.join(src, "test", "runner.rb")
      @runner = File.file?(runner) ? [runner] : [] # without it, the test file runs itself (test/unit's autorun)
      @work_dir = work_dir
      @timeout = timeout
    end

    def run(test)
      log = File.join(@work_dir, "logs", "#{test.name.tr('#', '.')}.log")
      started = clock
      exit_status = spawn_and_wait(test, log)
      output = File.read(log, mode: "rb").scrub
      result(test.name, exit_status, output).tap do |r|
        r.seconds = clock - started
        r.log = log
      end
    end

    private

    def spawn_and_wait(test, log)
      cmd = [RbConfig.ruby, *@load_path.map { |d| "-I#{d}" }, *@runner, test.file, "-n", test.name]
      pid = Process.spawn(*cmd, chdir: @work_dir, in: File::NULL, out: log, err: %i[child out], pgroup: true)
      waiter = Process.detach(pid)
      status = waiter.join(@timeout)&.value
      unless status
        signal(pid, "TERM")
        signal(pid, "KILL") unless waiter.join(5)
        waiter.join
      end
      status
    ensure
      signal(pid, "KILL") if pid # what the test left running in its process group
    end

    def result(name, exit_status, output)
      return Result.new(name, :timeout, nil, timeout_detail(output)) unless exit_status

      counts = output.scan(SUMMARY).last&.map(&:to_i)
      tests, failures, errors, skips = counts
      if counts.nil?
        Result.new(name, :fail, nil, ["#{describe(exit_status)}, without the test runner's summary:", *tail(output)])
      elsif tests.zero?
        Result.new(name, :fail, nil, ["no test ran: is #{name} really a test method?"])
      elsif (failures + errors).positive? || !exit_status.success?
        Result.new(name, :fail, nil, failure_detail(output) || ["#{describe(exit_status)}:", *tail(output)])
      elsif skips == tests
        Result.new(name, :skip, nil, failure_detail(output))
      else
        Result.new(name, :pass)
      end
    end

    # The runner prints "  1) Failure:" (or Error:, Skipped:), "Class#test [file:line]:" (Errors: no
    # location), then the message and the backtrace. Returned: the message's first line with the
    # location appended, then the next lines; paths in the generated directory made relative.
    def failure_detail(output)
      lines = output.lines.map { |l| l.chomp.gsub("#{@work_dir}/", "") }
      start = lines.index { |l| l.match?(/^\s*1\) (Failure|Error|Skipped):/) } or return nil
      header, *detail = lines[(start + 1)..].take_while { |l| !l.match?(SUMMARY) && !l.start_with?("Finished tests in ") }
      detail = detail.reject { |l| l.strip.empty? }.first(DETAIL_LINES)
      location = header.to_s[/ \[(.+)\]:\z/, 1]
      detail[0] = "#{detail[0]}  [#{location}]" if location && detail[0]
      detail
    end

    def timeout_detail(output)
      tail = tail(output)
      ["no result after #{format("%g", @timeout)}s (stopped)#{tail.empty? ? '' : '; its last output:'}", *tail]
    end

    # the last lines of the output, without the runner's preamble
    def tail(output)
      lines = output.lines.map(&:rstrip).reject(&:empty?)
      running = lines.index("# Running tests:")
      lines = lines[(running + 1)..] if running
      lines.last(DETAIL_LINES)
    end

    def describe(status)
      status.signaled? ? "killed by SIG#{Signal.signame(status.termsig)}" : "exit status #{status.exitstatus}"
    end

    def signal(pid, sig)
      Process.kill(sig, -pid)
    rescue Errno::ESRCH, Errno::EPERM
      nil
    end

    def clock
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
