# frozen_string_literal: true

# CRuby's own test/fiber suite against UringMachine::Scheduler (see rakelib/cruby.rake):
#
#   ruby test/cruby/run.rb CRUBY_SOURCE_TREE
#
# Each test method runs in a process of its own with a time limit; a line per test, then
# "N passed, N failed". Exits non-zero when a test failed that test/cruby/expected_failures.rb
# does not list. The generated test directory (with each test's full output in logs/) is removed
# after a clean run and kept (its path printed) otherwise.
#
#   UM_CRUBY_TIMEOUT=30        seconds per test
#   UM_CRUBY_TESTS="sleep io"  only the tests whose Class#method name contains one of these words
#   UM_CRUBY_KEEP=1            keep the generated test directory even after a clean run

require "fileutils"
require "tmpdir"
require_relative "source_tree"
require_relative "work_dir"
require_relative "isolated_test"
require_relative "report"

module CRubyFiberSuite
  LIB_DIR = File.expand_path("../../lib", __dir__)

  module_function

  def main(argv)
    src = argv.first or abort "usage: ruby #{$PROGRAM_NAME} CRUBY_SOURCE_TREE"
    src = File.expand_path(src)
    CRubySourceTree.check_version(src)
    work = WorkDir.new(src, Dir.mktmpdir("uring_machine-cruby-"), LIB_DIR).create
    tests = select(work.tests)
    timeout = Float(ENV.fetch("UM_CRUBY_TIMEOUT", "30"))
    puts "CRuby #{CRubySourceTree.version(src)} test/fiber from #{src}, on #{RUBY_DESCRIPTION}"
    puts "#{tests.size} tests, each in its own process (limit #{timeout.to_i}s), in #{work.path}"
    abort "no test selected (UM_CRUBY_TESTS=#{ENV['UM_CRUBY_TESTS'].inspect})" if tests.empty?

    report = Report.new
    runner = IsolatedTest.new(src, work.path, timeout)
    tests.each { |test| report.test_done(runner.run(test)) }
    report.summary(File.join(work.path, "logs"))
    finish(work.path, report.ok?)
  end

  def select(tests)
    words = ENV.fetch("UM_CRUBY_TESTS", "").split
    words.empty? ? tests : tests.select { |t| words.any? { |w| t.name.include?(w) } }
  end

  def finish(work_path, ok)
    if ok && ENV["UM_CRUBY_KEEP"] != "1"
      FileUtils.rm_rf(work_path)
    else
      where = ENV["UM_CHROOT_RUBY"] ? " (inside the Ruby #{ENV['UM_CHROOT_RUBY']} chroot: rake 'matrix:shell[#{ENV['UM_CHROOT_RUBY']}]')" : ""
      puts "kept #{work_path}#{where}"
    end
    exit(ok ? 0 : 1)
  end

end

CRubyFiberSuite.main(ARGV) if $PROGRAM_NAME == __FILE__
