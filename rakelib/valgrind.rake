# frozen_string_literal: true

# rake test:valgrind   Valgrind's memcheck over a representative subset of the suite (Machine I/O,
#                      timers, fibers, interrupted ops, the scheduler's pipes, time and fast
#                      paths), one test file per run; fails on any invalid read, write or free, or
#                      a block our extension allocated and definitely lost (test/valgrind/run.rb).
#                      UM_VALGRIND_TESTS picks other files. Needs Debian's valgrind (bin/setup).
namespace :test do
  desc "Compile, then run a subset of the suite under Valgrind memcheck (UM_VALGRIND_TESTS)"
  task valgrind: :compile do
    ruby("-w", "test/valgrind/run.rb") do |ok, _|
      abort "test:valgrind: heap errors, leaks or failed tests (see above)" unless ok
    end
  end
end
