# frozen_string_literal: true

# CRuby's own IO tests (test/ruby/test_io.rb and test_io_m17n.rb of a CRuby source tree of this
# Ruby's version) run twice, each time in a process of its own: plainly, then with every test
# method inside a non-blocking fiber under UringMachine::Scheduler (see io_child.rb). The
# outcomes must match, test by test, but for the differences test/cruby/expected_io_differences.rb
# lists with their reason (see rakelib/cruby.rake).
#
#   ruby test/cruby/io_run.rb CRUBY_SOURCE_TREE
#
#   UM_CRUBY_IO_TIMEOUT=600   seconds per run (a run that takes longer is a failure)
require "rbconfig"
require "tmpdir"
require_relative "source_tree"
require_relative "expected_io_differences"

module CRubyIOSuite
  LIB_DIR = File.expand_path("../../lib", __dir__)
  CHILD = File.expand_path("io_child.rb", __dir__)
  TEST_FILES = %w[test/ruby/test_io.rb test/ruby/test_io_m17n.rb].freeze

  module_function

  def main(argv)
    src = File.expand_path(argv.first || abort("usage: ruby #{$PROGRAM_NAME} CRUBY_SOURCE_TREE"))
    CRubySourceTree.check_version(src)
    timeout = Integer(ENV.fetch("UM_CRUBY_IO_TIMEOUT", "600"))
    puts "CRuby #{CRubySourceTree.version(src)} #{TEST_FILES.join(' and ')}, plain and under " \
         "UringMachine::Scheduler, on #{RUBY_DESCRIPTION}"
    Dir.mktmpdir("uring_machine-cruby-io-") do |dir|
      plain = run_suite(src, dir, "plain", timeout)
      scheduled = run_suite(src, dir, "scheduled", timeout)
      exit(compare(plain, scheduled) ? 0 : 1)
    end
  end

  # Runs the tests once; returns {"Class#method" => status}, or nil if the run did not end well.
  def run_suite(src, dir, mode, timeout)
    record = File.join(dir, "#{mode}.record")
    log = File.join(dir, "#{mode}.log")
    env = { "UM_IO_RECORD" => record, "UM_IO_SCHEDULED" => (mode == "scheduled" ? "1" : "0") }
    requires = TEST_FILES.map { |f| "require #{File.join(src, f).dump}" }.join("; ")
    command = [RbConfig.ruby, "-I", LIB_DIR, "-I", File.join(src, "tool/lib"), "-I", File.join(src, "test/lib"),
               "-e", "require 'test/unit'; require #{CHILD.dump}; #{requires}"]
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    pid = Process.spawn(env, *command, chdir: dir, in: File::NULL, %i[out err] => log, pgroup: true)
    status = wait_at_most(pid, timeout)
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    outcomes = File.exist?(record) ? File.readlines(record, chomp: true).to_h { |l| l.split("\t", 2) } : {}
    puts format("%-9s %3d tests in %5.1fs: %s", mode, outcomes.size, took, tally(outcomes))
    return outcomes if status&.exited?

    puts "#{mode} run #{status ? "ended with #{status.inspect}" : "timed out after #{timeout}s"}; its output ends:"
    puts File.readlines(log).last(30).map { |l| "  #{l}" }
    nil
  end

  def wait_at_most(pid, seconds)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    loop do
      _, status = Process.wait2(pid, Process::WNOHANG)
      return status if status
      break if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.1
    end
    Process.kill(:KILL, -pid)
    Process.wait(pid)
    nil
  end

  def tally(outcomes)
    outcomes.values.map { |s| s.split.first }.tally.sort.map { |s, n| "#{n} #{s}" }.join(", ")
  end

  # A test that passes one way and is skipped (omit) the other did not go wrong either way:
  # some tests skip when other threads are alive, and a scheduler's worker threads may be.
  def same_outcome?(was, now)
    was == now || [was, now].sort == %w[pass skip]
  end

  # Prints the differences; true when each one is expected.
  def compare(plain, scheduled)
    return false unless plain && scheduled

    differences = (plain.keys | scheduled.keys).sort.filter_map do |name|
      was = plain.fetch(name, "not run")
      now = scheduled.fetch(name, "not run")
      [name, was, now] unless same_outcome?(was, now)
    end
    unexpected = differences.reject { |name, *| ExpectedIODifferences.reason(name) }
    differences.each do |name, was, now|
      reason = ExpectedIODifferences.reason(name)
      puts "#{reason ? 'EXPECTED' : 'DIFFERS '} #{name}: plain #{was}, scheduled #{now}#{" (#{reason})" if reason}"
    end
    puts "#{plain.size} tests, #{differences.size} differ, #{unexpected.size} unexpectedly"
    unexpected.empty?
  end
end

CRubyIOSuite.main(ARGV) if $PROGRAM_NAME == __FILE__
