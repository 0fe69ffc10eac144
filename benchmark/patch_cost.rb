# frozen_string_literal: true

# What the gem's changes to Ruby's own classes (UringMachine.patches) cost code that does not
# use it: a plain thread, no scheduler, moving small lines through a pipe with IO#write +
# IO#gets, and with IO#syswrite + IO#read_nonblock. Each stage runs in a process of its own,
# since a patch is never taken back:
#   ruby                 the gem not loaded
#   gem loaded           `require "uring_machine"` (the gem-load patches)
#   after a Scheduler    a Machine and a Scheduler ran on another thread, which has ended:
#                        every patch is installed, none of the IO fast paths is in place (they
#                        are only while a Scheduler is open)
#   Scheduler open       a Scheduler is open (made and not yet closed, as while another thread
#                        runs one): the fast paths are in front of IO's methods, and this
#                        thread, which has no scheduler, passes through them to CRuby's
# The cost is the ratio to the first stage, measured in the same run. Times swing on a shared
# host; BENCH_PATCH_COST=instructions counts instructions per line instead (Valgrind's
# Callgrind, GC off; a loop of N and of 3N lines, so that start-up cancels out), which does not.
require "rbconfig"
require_relative "harness"

module PatchCostBench
  LINES = Bench.scaled(200_000)
  LIB = File.expand_path("../lib", __dir__)

  STAGES = {
    "ruby" => "",
    "gem loaded" => 'require "uring_machine"',
    "after a Scheduler" => 'require "uring_machine"; Thread.new { Fiber.set_scheduler(UringMachine::Scheduler.new); ' \
                           "Fiber.schedule { sleep(0.001) } }.join",
    "Scheduler open" => 'require "uring_machine"; $open = UringMachine::Scheduler.new',
  }.freeze

  # Run in the child: the best of Bench::RUNS of each loop, in seconds, as "lines gets nonblock".
  CHILD = <<~RUBY
    r, w = IO.pipe
    line = "x" * 63 + "\\n"
    buf = +""
    best = ->(&loop) { Array.new(#{Bench::RUNS}) { t = Process.clock_gettime(Process::CLOCK_MONOTONIC); loop.call; Process.clock_gettime(Process::CLOCK_MONOTONIC) - t }.min }
    gets = best.call { #{LINES}.times { w.write(line); r.gets } }
    nonblock = best.call { #{LINES}.times { w.syswrite(line); r.read_nonblock(64, buf) } }
    puts [gets, nonblock].join(" ")
  RUBY

  # Run in the child under Callgrind: one loop (ARGV[0], gets or nonblock), ARGV[1] lines, GC
  # off, so that the count is the calls' own.
  COUNTED = <<~RUBY
    r, w = IO.pipe
    line = "x" * 63 + "\\n"
    buf = +""
    lines = Integer(ARGV[1])
    GC.start
    GC.disable
    if ARGV[0] == "gets"
      lines.times { w.write(line); r.gets }
    else
      lines.times { w.syswrite(line); r.read_nonblock(64, buf) }
    end
  RUBY
  COUNTED_LINES = 5_000

  module_function

  # Instructions per line of +loop+ after +setup+.
  def instructions(setup, loop)
    counts = [COUNTED_LINES, 3 * COUNTED_LINES].map do |lines|
      out = IO.popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", RbConfig.ruby, "-I", LIB,
                      "-e", "#{setup}\n#{COUNTED}", loop, lines.to_s], err: %i[child out], &:read)
      Integer(out[/Collected : (\d+)/, 1] || raise("callgrind failed: #{out.lines.last}"))
    end
    (counts[1] - counts[0]) / (2.0 * COUNTED_LINES)
  end

  def count_instructions
    puts "patch_cost: a plain thread, instructions per 64 B line through a pipe (Callgrind, GC off), " \
         "ruby #{RUBY_VERSION}"
    counts = STAGES.transform_values { |setup| %w[gets nonblock].map { |loop| instructions(setup, loop) } }
    base = counts.fetch("ruby")
    puts format("%-18s %14s %8s %22s %8s", "stage", "write+gets", "ratio", "syswrite+read_nonblock", "ratio")
    counts.each do |name, (gets, nonblock)|
      puts format("%-18s %14.0f %8.2f %22.0f %8.2f", name, gets, gets / base[0], nonblock, nonblock / base[1])
    end
  end

  def stage(setup)
    out = IO.popen([RbConfig.ruby, "-I", LIB, "-e", "#{setup}\n#{CHILD}"], &:read)
    raise "stage failed: #{setup}" unless $?.success? # rubocop:disable Style/SpecialGlobalVars

    out.split.map(&:to_f)
  end

  def run
    return count_instructions if ENV["BENCH_PATCH_COST"] == "instructions"

    puts "patch_cost: a plain thread, #{LINES} lines of 64 B through a pipe per loop, best of " \
         "#{Bench::RUNS}, ruby #{RUBY_VERSION}"
    times = STAGES.transform_values { |setup| stage(setup) }
    base = times.fetch("ruby")
    puts format("%-18s %14s %8s %22s %8s", "stage", "write+gets µs", "ratio", "syswrite+read_nonblock", "ratio")
    times.each do |name, (gets, nonblock)|
      puts format("%-18s %14.2f %8.2f %22.2f %8.2f", name, gets / LINES * 1e6, gets / base[0],
                  nonblock / LINES * 1e6, nonblock / base[1])
    end
  end
end

PatchCostBench.run if $PROGRAM_NAME == __FILE__
