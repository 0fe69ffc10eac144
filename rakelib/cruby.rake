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

require "rbconfig"

namespace :test do
  desc "Compile, then run CRuby's test/fiber against UringMachine::Scheduler (CRUBY_SRC=tree, else Debian's source)"
  task cruby: :compile do
    src = ENV.fetch("CRUBY_SRC", "")
    if src.empty?
      src = IO.popen([File.expand_path("../script/cruby-src", __dir__), RbConfig.ruby], &:read).strip
      abort "test:cruby: script/cruby-src could not provide the source of Ruby #{RUBY_VERSION}" unless $?.success?
    end
    ruby("-w", "test/cruby/run.rb", src) { |ok, _| abort "test:cruby failed on Ruby #{RUBY_VERSION}" unless ok }
  end
end
