# frozen_string_literal: true

require_relative "integration_helper"
require "open3"

# Child processes started from fibers (Open3, IO.popen, system, spawn + Process.wait): each
# waits for its child in the ring, so 20 children of 0.2 s take about 0.2 s.
class TestIntegrationProcesses < IntegrationTest
  CHILDREN = 20
  SLEEP = 0.2
  LIMIT = 2 # seconds, for CHILDREN × SLEEP = 4 s of sleeping

  # Runs the block in CHILDREN fibers under a ticker; its values, the time taken and the ticks.
  def overlapped(&block)
    (values, took), ticks = with_scheduler do
      run_with_ticker do
        values = nil
        took = elapsed { values = in_fibers(CHILDREN, &block) }
        [values, took]
      end
    end
    assert_operator took, :<, LIMIT, "#{CHILDREN} children of #{SLEEP}s took #{took.round(2)}s: no overlap"
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
