# frozen_string_literal: true

# CRuby's own test/fiber suite, run against UringMachine::Scheduler instead of its reference
# scheduler (test/cruby/run.rb does the swap and runs each test method in a process of its own).
#
#   rake test:cruby                        the Debian source package of this Ruby, downloaded at
#                                          test time into a cache outside the repo (script/cruby-src)
#   CRUBY_SRC=/path/to/ruby rake test:cruby  a CRuby source tree of this Ruby's version instead
#
# UM_CRUBY_TIMEOUT (seconds per test, default 30), UM_CRUBY_TESTS (name filter), UM_CRUBY_KEEP,
# UM_CRUBY_CACHE: see test/cruby/run.rb and script/cruby-src.
#
#   rake test:cruby_io      CRuby's test_io.rb and test_io_m17n.rb (same source), run plainly and
#                           with each test in a fiber under UringMachine::Scheduler: the outcomes
#                           must match (test/cruby/suite_run.rb, expected_differences.rb)
#   rake test:cruby_stdlib  the same with CRuby's socket, timeout, thread, thread_queue, thread_cv,
#                           monitor, process, open3, tempfile, pty, openssl/test_ssl and
#                           net/http/test_http tests

require "rbconfig"

# The source tree of this Ruby: CRUBY_SRC, or Debian's source package via script/cruby-src.
def cruby_source(task)
  src = ENV.fetch("CRUBY_SRC", "")
  return src unless src.empty?

  src = IO.popen([File.expand_path("../script/cruby-src", __dir__), RbConfig.ruby], &:read).strip
  abort "#{task}: script/cruby-src could not provide the source of Ruby #{RUBY_VERSION}" unless $?.success?
  src
end

namespace :test do
  desc "Compile, then run CRuby's test/fiber against UringMachine::Scheduler (CRUBY_SRC=tree, else Debian's source)"
  task cruby: :compile do
    ruby("-w", "test/cruby/run.rb", cruby_source("test:cruby")) do |ok, _|
      abort "test:cruby failed on Ruby #{RUBY_VERSION}" unless ok
    end
  end

  desc "Compile, then run CRuby's test_io.rb and test_io_m17n.rb plainly and under UringMachine::Scheduler, and compare"
  task cruby_io: :compile do
    ruby("-w", "test/cruby/suite_run.rb", "io", cruby_source("test:cruby_io")) do |ok, _|
      abort "test:cruby_io failed on Ruby #{RUBY_VERSION}" unless ok
    end
  end

  desc "Compile, then run CRuby's socket, timeout, thread, process... tests plainly and under UringMachine::Scheduler, and compare"
  task cruby_stdlib: :compile do
    ruby("-w", "test/cruby/suite_run.rb", "stdlib", cruby_source("test:cruby_stdlib")) do |ok, _|
      abort "test:cruby_stdlib failed on Ruby #{RUBY_VERSION}" unless ok
    end
  end
end
