# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"

# Descriptors of ours do not outlive what they serve. A scheduler thread's ring and eventfd are
# closed when the thread ends, not whenever GC frees its machine: the Thread object (kept in an
# array, say) or a stale reference on a stack keeps that reachable. A forked child closes the
# parent's rings, eventfds and the pidfds the parent's waits hold as it starts: none of it can
# serve the child, and the child never learns that the objects holding them are unreachable (its
# own fiber points to the parent's machine). Each case runs in a fresh Ruby, where the count is
# exact; children fork from scheduled fibers while other fibers have ops in flight (a pipe read,
# a sleep, Process.wait of a sibling) and report what they have beyond the parent's baseline.
class TestFdsAfterThreadsAndForks < Minitest::Test
  include ChildRuby::Assertions

  PRELUDE = <<~'RUBY'
    require "uring_machine"
    require "json"

    # Open descriptors and what they are (not the one this listing uses).
    def fds
      Dir.children("/proc/self/fd").filter_map do |fd|
        target = begin
          File.readlink("/proc/self/fd/#{fd}")
        rescue Errno::ENOENT
          next
        end
        "#{fd} #{target}" unless target.start_with?("/proc/")
      end.sort
    end

    report_r, report_w = IO.pipe
    # Each scheduler thread gets a pipe whose read is in flight while its fibers fork.
    pipes = Array.new(THREADS) { IO.pipe }
    baseline = fds

    # What a scheduler thread does: FORKS fibers fork at once and wait for their child, while
    # another fiber reads a pipe and another sleeps. The child reports what it has beyond the
    # baseline after a GC, and leaves without running anything of the parent's.
    run_thread = lambda do |(r, w)|
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule { r.read(1) }
      Fiber.schedule { sleep 0.05 }
      FORKS.times do
        Fiber.schedule do
          pid = fork do
            GC.start
            report_w.write(JSON.dump(fds - baseline) + "\n")
            exit!(0)
          end
          Process.wait(pid)
        end
      end
      Fiber.schedule { w.write("x") }
      Fiber.set_scheduler(nil)
    end

    threads = pipes.map { |pipe| Thread.new(pipe, &run_thread) }
    threads.each(&:join) # the Thread objects stay referenced, as in most programs
    GC.start
    report_w.close
    children = report_r.readlines.map { |line| JSON.parse(line) }
    puts JSON.dump("parent" => fds - baseline, "children" => children)
  RUBY

  # Runs the scenario with +threads+ scheduler threads forking +forks+ times each; returns
  # [descriptors the parent has beyond its baseline, the same for each child].
  def run_scenario(threads:, forks:)
    script = "THREADS = #{threads}\nFORKS = #{forks}\n#{PRELUDE}"
    report, out = child_report("-w", "-e", script, limit: 60)
    assert_equal threads * forks, report["children"].size, out
    [report["parent"], report["children"]]
  end

  def test_twenty_concurrent_forks_in_one_thread_that_then_ends
    parent, children = run_scenario(threads: 1, forks: 20)
    assert_equal [], parent, "the ended thread's descriptors are still open"
    assert_equal [[]] * 20, children, "children kept descriptors of the parent's"
  end

  def test_forks_from_several_scheduler_threads_with_ops_in_flight
    parent, children = run_scenario(threads: 4, forks: 10)
    assert_equal [], parent, "the ended threads' descriptors are still open"
    assert_equal [[]] * 40, children, "children kept descriptors of the parent's"
  end
end
