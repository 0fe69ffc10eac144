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
require_relative "work_dir"
require_relative "isolated_test"
require_relative "report"

module CRubyFiberSuite
  LIB_DIR = File.expand_path("../../lib", __dir__)

  module_function

  def main(argv)
    src = argv.first or abort "usage: ruby #{$PROGRAM_NAME} CRUBY_SOURCE_TREE"
    src = File.expand_path(src)
    check_version(src)
    work = WorkDir.new(src, Dir.mktmpdir("uring_machine-cruby-"), LIB_DIR).create
    tests = select(work.tests)
    timeout = Float(ENV.fetch("UM_CRUBY_TIMEOUT", "30"))
    puts "CRuby #{source_version(src)} test/fiber from #{src}, on #{RUBY_DESCRIPTION}"
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

  # "X.Y.Z" of a CRuby source tree
  def source_version(src)
    api = File.read(File.join(src, "include", "ruby", "version.h"))
    teeny = File.read(File.join(src, "version.h"))[/^#\s*define\s+RUBY_VERSION_TEENY\s+(\d+)/, 1]
    major = api[/^#\s*define\s+RUBY_API_VERSION_MAJOR\s+(\d+)/, 1]
    minor = api[/^#\s*define\s+RUBY_API_VERSION_MINOR\s+(\d+)/, 1]
    [major, minor, teeny].join(".")
  rescue SystemCallError => e
    abort "#{src} does not look like a CRuby source tree: #{e.message}"
  end

  # The tests of another Ruby series test another Fiber::Scheduler interface: refuse.
  def check_version(src)
    version = source_version(src)
    series = ->(v) { v.split(".").first(2) }
    return if series.(version) == series.(RUBY_VERSION)

    abort "the source tree #{src} is CRuby #{version}, but this is Ruby #{RUBY_VERSION}: " \
          "its test/fiber would not test this Ruby's scheduler interface"
  end
end

CRubyFiberSuite.main(ARGV) if $PROGRAM_NAME == __FILE__
