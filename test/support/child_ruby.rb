# frozen_string_literal: true

require "rbconfig"
require "json"

# Child Rubies, for the tests whose case must run in a fresh process (a crash, a signal, a hang
# or an exact descriptor count must not touch the test run): this Ruby with the worktree's lib/
# on its load path, each bounded in time. Plain Ruby (no Minitest), so that code outside a test
# can use it; tests include ChildRuby::Assertions.
module ChildRuby
  LIB = File.expand_path("../../lib", __dir__)

  # What a child left: its Process::Status, its stdout, its stderr (nil where it went to
  # stdout), and whether it was killed for outliving its limit.
  Result = Struct.new(:status, :out, :err, :killed)

  module_function

  # The argv running this Ruby with lib/ on the load path, then +args+ (options, -e or a file).
  def command(*args)
    [RbConfig.ruby, "-I", LIB, *args]
  end

  # Reaps +pid+, KILLing it first if it has not exited within +limit+ seconds. Returns
  # [Process::Status, whether it was killed].
  def wait(pid, limit)
    waiter = Process.detach(pid)
    return [waiter.value, false] if waiter.join(limit)

    killed = begin
      Process.kill(:KILL, pid)
      true
    rescue Errno::ESRCH
      false # it exited just now
    end
    [waiter.value, killed]
  end

  # Runs a child Ruby (+args+ as for command) to its end or +limit+, stdin from +input+, stdout
  # and stderr read meanwhile (stderr into stdout with merge_err). Returns a Result.
  def run(*args, limit:, input: File::NULL, merge_err: false)
    out_r, out_w = IO.pipe
    err_r, err_w = merge_err ? [nil, out_w] : IO.pipe
    pid = Process.spawn(*command(*args), in: input, out: out_w, err: err_w)
    [out_w, err_w].uniq.each(&:close)
    out = Thread.new { out_r.read }
    err = err_r && Thread.new { err_r.read }
    status, killed = wait(pid, limit)
    Result.new(status, out.value, err&.value, killed)
  ensure
    [out_r, out_w, err_r, err_w].each { |io| io.close if io && !io.closed? }
  end

  # For Minitest tests.
  module Assertions
    # ChildRuby.run, failing the test if the child outlived +limit+.
    def run_ruby(*args, limit:, **options)
      result = ChildRuby.run(*args, limit: limit, **options)
      flunk "the child Ruby did not exit within #{limit} s: #{result.out.inspect}\n#{result.err}" if result.killed
      result
    end

    # Runs a child Ruby whose last line of output is a JSON report; asserts that it exited
    # cleanly. Returns [the report, all it printed (stderr included)].
    def child_report(*args, limit:)
      result = run_ruby(*args, limit: limit, merge_err: true)
      assert result.status.success?, "the child Ruby failed (#{result.status.inspect}):\n#{result.out}"
      [JSON.parse(result.out.lines.last), result.out]
    end
  end
end
