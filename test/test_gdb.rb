# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"
require "json"
require "tmpdir"

# The gdb helpers (lib/uring_machine/gdb/uring_machine.py) on a program stopped in a known
# state (support/gdb_program.rb): Debian's gdb attached to the live process, then on a core
# file of it. The listing must show each fiber with what it waits on.
class TestGdb < Minitest::Test
  PROGRAM = File.expand_path("support/gdb_program.rb", __dir__)
  HELPERS = File.expand_path("../lib/uring_machine/gdb/uring_machine.py", __dir__)
  LIMIT = 60

  def setup
    super
    skip "gdb is not installed (Debian package gdb): the gdb helpers' tests need it" unless system("command -v gdb >/dev/null 2>&1")
    @dir = Dir.mktmpdir("uring_machine_gdb")
    @input_r, @input_w = IO.pipe
    @out_r, out_w = IO.pipe
    @pid = Process.spawn(*ChildRuby.command(PROGRAM), in: @input_r, out: out_w)
    out_w.close
    @fibers = JSON.parse(@out_r.gets || flunk("the program printed nothing"))
    assert_equal "ready\n", @out_r.gets
  end

  def teardown
    if @pid
      Process.kill(:KILL, @pid)
      Process.wait(@pid)
    end
    [@input_r, @input_w, @out_r].each { |io| io&.close }
    FileUtils.rm_rf(@dir) if @dir
    super
  end

  def gdb(*args)
    out = IO.popen(["timeout", LIMIT.to_s, "gdb", "-nx", "-batch", *args, err: %i[child out]], &:read)
    skip "gdb may not attach here (ptrace is not permitted: kernel.yama.ptrace_scope or a container without CAP_SYS_PTRACE)" if out.include?("ptrace: Operation not permitted")
    out
  end

  def helpers(*target)
    gdb(*target, "-ex", "source #{HELPERS}", "-ex", "uring-machine")
  end

  def fiber_line(listing, name, called: nil)
    address = format("fiber 0x%x%s:", @fibers.fetch(name.to_s), called && " #{called.inspect}")
    listing.lines.find { |l| l.include?(address) } || flunk("no #{address} in the listing:\n#{listing}")
  end

  def assert_waits_listed(listing)
    assert_match(/^2 machine\(s\) in process #{@pid}/, listing)
    assert_match(/waiting on read fd #{@fibers['pipe_fd']}, for \d+\.\d s/, fiber_line(listing, :reader, called: "pipe reader"))
    assert_match(/sleeping, for .*timer fires in \d+\.\d s/, fiber_line(listing, :sleeper, called: "sleeper 2"))
    assert_match(/\A {4}fiber 0x\h+: receiving from its mailbox/, fiber_line(listing, :receiver), "a name taken away is not shown")
    assert_includes fiber_line(listing, :joiner), format("joining fiber 0x%x", @fibers["reader"])
    assert_match(/op \d+: read, fd #{@fibers['pipe_fd']}, in flight, fiber 0x#{@fibers['reader'].to_s(16)}/, listing)
    assert_match(/op \d+: timeout, wake timer, in flight, fiber 0x#{@fibers['sleeper'].to_s(16)}/, listing)
    assert_match(/current \(the thread runs on its stack\); waiting on read fd 0, for/, fiber_line(listing, :body))
    assert_match(/^  run queue: empty$/, listing)
    assert_match(/sleep, 9\d\d\.\d s left/, fiber_line(listing, :worker))
  end

  def test_live_process
    listing = helpers("-p", @pid.to_s)
    assert_waits_listed(listing)
    head, tail = listing[/ring \(kernel\): SQ head (\d+) tail (\d+)/].scan(/\d+/)
    assert_equal tail, head, "every SQE is submitted while the thread waits in the ring"
  end

  def test_core_file
    core = File.join(@dir, "core")
    gdb("-p", @pid.to_s, "-ex", "gcore #{core}")
    assert File.size?(core), "gcore wrote no core file"
    listing = helpers(RbConfig.ruby, core)
    assert_match(/\(core file\)/, listing)
    assert_waits_listed(listing)
  end
end
