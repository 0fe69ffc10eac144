# frozen_string_literal: true

require_relative "integration_helper"
require "open3"

# Child processes started from fibers (Open3, IO.popen, system, spawn + Process.wait): each
# waits for its child in the ring, so 20 children of 0.2 s take about 0.2 s.
class TestIntegrationProcesses < IntegrationTest
  CHILDREN = 20
  SLEEP = 0.2

  # What starting and reaping one child costs this process now, outside any scheduler (median
  # of 3). fork blocks the thread, and its cost grows with the process's memory mappings: after
  # the suite's 10,000-fiber tests, CRuby's fiber pool keeps 20,000 stack mappings and a spawn
  # takes ~0.1 s instead of ~0.01 s. Only the waiting can overlap.
  def spawn_cost
    3.times.map { elapsed { Process.wait(Process.spawn("true")) } }.sort[1]
  end

  # The most of +windows+ ([from, to] pairs) that overlap at one moment.
  def most_at_once(windows)
    level = 0
    windows.flat_map { |from, to| [[from, 1], [to, -1]] }.sort.map { |_, change| level += change }.max || 0
  end

  # Runs the block in CHILDREN fibers under a ticker; its values. The fibers' calls must overlap
  # (in a row they cannot), and the whole must take at most one sleep, the spawns one after
  # another (twice their cost measured now: a busy machine varies) and a second to spare.
  def overlapped
    spawning = CHILDREN * spawn_cost
    (values, windows, took), ticks = with_scheduler do
      run_with_ticker do
        windows = []
        values = nil
        took = elapsed do
          values = in_fibers(CHILDREN) do |i|
            from = monotonic
            value = yield i
            windows << [from, monotonic]
            value
          end
        end
        [values, windows, took]
      end
    end
    overlap = most_at_once(windows)
    assert_operator overlap, :>=, 2, "the #{CHILDREN} calls ran one after another"
    limit = SLEEP + 2 * spawning + 1
    assert_operator took, :<, limit, "#{CHILDREN} children of #{SLEEP}s took #{took.round(2)}s " \
                                     "(spawning alone #{spawning.round(2)}s, at most #{overlap} at once)"
    assert_operator ticks, :>=, 3, "the ticker fiber did not run meanwhile"
    values
  end

  def test_open3_capture2
    values = overlapped { |i| Open3.capture2("sleep #{SLEEP}; echo #{i}") }
    values.each_with_index do |(output, status), i|
      assert_equal "#{i}\n", output
      assert_predicate status, :success?
    end
  end

  def test_io_popen
    values = overlapped { |i| IO.popen(["sh", "-c", "sleep #{SLEEP}; echo #{i}"], &:read) }
    assert_equal CHILDREN.times.map { |i| "#{i}\n" }, values
  end

  def test_system
    values = overlapped { |i| [system("sleep #{SLEEP}; exit #{i % 2}"), $?.exitstatus] } # rubocop:disable Style/SpecialGlobalVars
    assert_equal CHILDREN.times.map { |i| [i.even?, i % 2] }, values
  end

  def test_spawn_and_process_wait
    values = overlapped do |i|
      pid = Process.spawn("sleep", SLEEP.to_s)
      _, status = Process.wait2(pid)
      [i, status.success?]
    end
    assert_equal CHILDREN.times.map { |i| [i, true] }, values
  end
end
