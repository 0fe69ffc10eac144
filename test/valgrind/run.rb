# frozen_string_literal: true

# `rake test:valgrind`: runs a representative subset of the test suite under Valgrind's
# memcheck, one test file per Valgrind run, and fails on any heap error: an invalid read, write
# or free of heap memory (or of no memory at all) anywhere, or a block definitely lost that our
# extension allocated. Ruby's own noise is left out: definedness errors are off
# (--undef-value-errors=no: the kernel fills read buffers through io_uring behind Valgrind's
# back, and CRuby's conservative GC reads uninitialised stack), accesses Valgrind flags on fiber
# stacks are CRuby's stack switches (STACK_ADDRESS), and CRuby's blocks never freed at exit are
# not ours (the first frame after the allocator must be in uring_machine.so). ruby.supp holds
# CRuby's known non-errors.
# Run from the repository after `rake compile` (rake test:valgrind does both).
#
#   UM_VALGRIND_TESTS="test/test_time.rb ..."   other test files
#   UM_VALGRIND_KEEP=1                          keep the XML reports (their directory is printed)
#   UM_VALGRIND_TIMEOUT=600                     seconds per test file before it is killed (a failure)
require "rbconfig"
require "tmpdir"
require "fileutils"

module ValgrindRun
  ROOT = File.expand_path("../..", __dir__)
  # Machine I/O, sockets, timers, fibers, interrupted ops; the scheduler's time and closes.
  # Left out: test_scheduler_pipes (its large transfers outlast their 30 s limit under
  # Valgrind), test_scheduler_fast_io and test_scheduler_sync (some of their tests stop making
  # progress under Valgrind; natively they pass).
  TESTS = %w[test/test_io.rb test/test_net.rb test/test_time.rb test/test_fibers.rb test/test_completed_ops.rb
             test/test_scheduler_time.rb test/test_scheduler_io_close.rb].freeze
  TIME_LIMIT = Integer(ENV.fetch("UM_VALGRIND_TIMEOUT", "600")) # seconds per test file
  ALLOCATORS = /\A(malloc|calloc|realloc|memalign|posix_memalign|aligned_alloc|operator new)/
  HEAP_ERRORS = %w[InvalidRead InvalidWrite InvalidFree MismatchedFree InvalidMemPool Overlap
                   FishyValue SyscallParam ClientCheck].freeze

  # Where an invalid access that is no heap error lands: a stack. CRuby switches fibers between
  # stacks of its own (mmapped, "anonymous") that Valgrind takes for the thread's, so it flags
  # the switch's reads and writes there (Ruby is not built with Valgrind's stack registration).
  STACK_ADDRESS = /is on thread \d+'s stack|is in a rw- anonymous segment/

  # One Valgrind error: its kind, what Valgrind says, its stack ([function, object file]) and
  # what Valgrind says about the address.
  Finding = Struct.new(:kind, :what, :frames, :aux) do
    def on_a_stack?
      aux.any? { |line| line.match?(STACK_ADDRESS) }
    end

    # For a leak: whether our code made the allocation (the first frame past the allocator).
    def allocated_by_us?
      caller = frames.drop_while { |fn, _| fn.to_s.match?(ALLOCATORS) }.first
      caller && caller[1].to_s.include?("uring_machine")
    end

    def to_s
      ([what] + frames.first(12).map { |fn, obj| "    #{fn} (#{File.basename(obj.to_s)})" }).join("\n")
    end
  end

  module_function

  def run
    tests = ENV.fetch("UM_VALGRIND_TESTS", TESTS.join(" ")).split
    dir = Dir.mktmpdir("um-valgrind-")
    failed = tests.sum { |test| run_one(test, dir) }
    puts(if failed.zero?
           "valgrind: 0 heap errors in #{tests.size} test files"
         else
           "valgrind: #{failed} problems (heap errors, leaks of ours, test files that failed)"
         end)
    failed.zero?
  ensure
    ENV["UM_VALGRIND_KEEP"] == "1" ? puts("kept #{dir}") : FileUtils.rm_rf(dir)
  end

  # Runs one test file under memcheck; returns its problems: heap errors, leaks of ours, and 1 if
  # its tests failed.
  def run_one(test, dir)
    xml = File.join(dir, "#{File.basename(test, '.rb')}.xml")
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    output = File.join(dir, "#{File.basename(test, '.rb')}.out")
    ok = run_limited(*valgrind(xml), RbConfig.ruby, "-Ilib", "-Itest", test, output: output)
    seconds = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    findings = parse(xml)
    invalid = findings.select { |f| HEAP_ERRORS.include?(f.kind) }
    errors = invalid.reject(&:on_a_stack?)
    leaks = findings.select { |f| f.kind == "Leak_DefinitelyLost" && f.allocated_by_us? }
    crubys = findings.count { |f| f.kind == "Leak_DefinitelyLost" } - leaks.size
    puts format("%-36s %s in %3.0f s: %d heap errors, %d definite leaks of ours; not counted: %d accesses " \
                "on fiber stacks, %d leaks of CRuby's", test, ok ? "tests passed" : "TESTS FAILED", seconds,
                errors.size, leaks.size, invalid.size - errors.size, crubys)
    (errors + leaks).each { |f| puts f }
    puts failures(output) unless ok
    errors.size + leaks.size + (ok ? 0 : 1)
  end

  # What the test run printed about its failures and errors (minitest's numbered reports), or
  # its last lines when it printed none (a crash, a hang that was killed).
  def failures(output)
    text = File.exist?(output) ? File.read(output, mode: "rb").scrub : ""
    reports = text.split(/^(?=\s*\d+\) (?:Failure|Error):)/).drop(1).map { |r| r.lines.first(15).join }
    (reports.empty? ? text.lines.last(20) : reports).join.gsub(/^/, "    ")
  end

  # Runs the command in a process group of its own, its output to the file +output+; true if it
  # passed, false if it failed or outlived TIME_LIMIT (then the whole group is killed: Ruby
  # under Valgrind may ignore TERM).
  def run_limited(*cmd, output:)
    pid = Process.spawn(*cmd, chdir: ROOT, out: output, err: [:child, :out], pgroup: true)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + TIME_LIMIT
    until (done = Process.wait2(pid, Process::WNOHANG))
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        Process.kill(:KILL, -pid)
        puts "#{cmd.last}: killed after #{TIME_LIMIT} s"
        Process.wait(pid)
        return false
      end
      sleep(0.5)
    end
    done.last.success?
  end

  def valgrind(xml)
    %W[valgrind --tool=memcheck --undef-value-errors=no --leak-check=full --show-leak-kinds=definite
       --errors-for-leak-kinds=definite --num-callers=40 --suppressions=#{File.join(__dir__, 'ruby.supp')}
       --xml=yes --xml-file=#{xml}]
  end

  # The errors of a Valgrind XML report (a regular format: a few patterns read it, much faster
  # than an XML parser on thousands of leak records).
  def parse(xml)
    return [] unless File.exist?(xml)

    File.read(xml).scan(%r{<error>(.*?)</error>}m).map do |(error)|
      kind = error[%r{<kind>(.*?)</kind>}, 1]
      what = error[%r{<what>(.*?)</what>}, 1] || error[%r{<xwhat>\s*<text>(.*?)</text>}m, 1]
      stack = error[%r{<stack>(.*?)</stack>}m, 1].to_s
      frames = stack.scan(%r{<frame>(.*?)</frame>}m).map do |(frame)|
        [frame[%r{<fn>(.*?)</fn>}, 1], frame[%r{<obj>(.*?)</obj>}, 1]]
      end
      Finding.new(kind, what, frames, error.scan(%r{<auxwhat>(.*?)</auxwhat>}).flatten)
    end
  end
end

exit(ValgrindRun.run)
