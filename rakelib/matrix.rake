# frozen_string_literal: true

# The Ruby matrix: the whole suite on Ruby 3.3 (Debian trixie) and 3.4 (Debian experimental)
# in debootstrap chroots cached outside the repo. The chroot plumbing is script/ruby-chroot.
#
#   rake matrix:setup           create/update the chroots (first time: about a minute each)
#   rake test:matrix            build + run the suite on every Ruby of the matrix
#   rake matrix:shell[3.4]      interactive shell inside a chroot, repo overlay at /src
#   rake matrix:clean           delete the chroots and their caches
#
# UM_RUBIES="3.4"            only these Rubies (default: all of `script/ruby-chroot list`)
# UM_MATRIX_TASKS="test"     rake tasks to run inside each chroot (default: test)
# UM_MATRIX_TIMEOUT=20       minutes per Ruby; a Ruby that takes longer is stopped and fails (0: no limit)
# UM_CHROOT_DIR, UM_DEBIAN_MIRROR, UM_CHROOT_PACKAGES, ...: see script/ruby-chroot

module UringMachineMatrix
  SCRIPT = File.expand_path("../script/ruby-chroot", __dir__)

  module_function

  def rubies
    list = ENV.fetch("UM_RUBIES", "").split
    list = IO.popen([SCRIPT, "list"], &:read).split if list.empty?
    list
  end

  def tasks
    list = ENV.fetch("UM_MATRIX_TASKS", "").split
    list.empty? ? %w[test] : list
  end

  # Run a chroot command in a process group of its own (so that it can be stopped as a whole), with
  # no stdin, dying with rake (setpriv --pdeathsig). On Ctrl-C / SIGTERM the signal goes to the
  # whole group and rake waits (up to 30 s, whatever other signals arrive: timeout(1) signals both
  # its child and its process group) until the chroot side has cleaned up. With a time limit, a
  # run that exceeds it is stopped and counts as failed. Returns true on success.
  def run(*cmd, limit: nil)
    cmd = ["setpriv", "--pdeathsig", "KILL", *cmd] if system("command -v setpriv >/dev/null 2>&1")
    pid = Process.spawn(*cmd, pgroup: true, in: File::NULL)
    begin
      result = wait_for(pid, limit)
      result.nil? ? stop(pid, "took longer than #{(limit / 60.0).round(1)} minutes") : result
    rescue Interrupt, SignalException => e
      signal(pid, e.is_a?(Interrupt) ? "INT" : e.signo)
      wait_a_little(pid, 30) || signal(pid, "KILL")
      raise
    end
  end

  # true / false: the command's success; nil: still running after `limit` seconds
  def wait_for(pid, limit)
    unless limit
      Process.wait(pid)
      return $?.success?
    end
    deadline = clock + limit
    until Process.wait(pid, Process::WNOHANG)
      return nil if clock > deadline
      sleep 0.2
    end
    $?.success?
  end

  def stop(pid, why)
    $stdout.puts "\n#{'!' * 10} #{why}: stopping it (TERM, then KILL after 30 s)"
    signal(pid, "TERM")
    wait_a_little(pid, 30) || (signal(pid, "KILL") && wait_a_little(pid, 10))
    false
  end

  def signal(pid, sig)
    Process.kill(sig, -pid)
    true
  rescue Errno::ESRCH
    false
  end

  # true once the process is reaped, false after `seconds`
  def wait_a_little(pid, seconds)
    deadline = clock + seconds
    begin
      until Process.wait(pid, Process::WNOHANG)
        return false if clock > deadline
        sleep 0.05
      end
      true
    rescue Interrupt, SignalException
      retry
    rescue Errno::ECHILD
      true
    end
  end

  # per-Ruby time limit in seconds (UM_MATRIX_TIMEOUT, minutes; default 20, 0 = none)
  def limit
    minutes = Float(ENV.fetch("UM_MATRIX_TIMEOUT", "20"))
    minutes.positive? ? minutes * 60 : nil
  end

  def banner(text)
    line = "=" * 78
    $stdout.puts "", line, "== #{text}", line
    $stdout.flush
  end

  def clock
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end
end

namespace :matrix do
  desc "Create/update the Debian chroots of the Ruby matrix (cached in $UM_CHROOT_DIR)"
  task :setup do
    UringMachineMatrix.rubies.each do |version|
      UringMachineMatrix.run(UringMachineMatrix::SCRIPT, "setup", version) or
        abort "matrix:setup: creating the Ruby #{version} chroot failed"
    end
  end

  desc "Interactive shell in the chroot of a matrix Ruby (the repo is an overlay at /src)"
  task :shell, [:ruby] do |_, args|
    version = args[:ruby] or abort "usage: rake 'matrix:shell[3.4]'"
    UringMachineMatrix.run(UringMachineMatrix::SCRIPT, "setup", version) or abort "setup failed"
    exec UringMachineMatrix::SCRIPT, "shell", version
  end

  desc "Delete the chroots of the Ruby matrix"
  task :clean do
    UringMachineMatrix.rubies.each { |version| sh UringMachineMatrix::SCRIPT, "remove", version }
  end
end

namespace :test do
  desc "Build and run the suite on every Ruby of the matrix (Debian chroots), then fail if any failed"
  task matrix: "matrix:setup" do
    m = UringMachineMatrix
    results = m.rubies.map do |version|
      where = IO.popen([m::SCRIPT, "describe", version], &:read).strip
      m.banner "Ruby #{version}: rake #{m.tasks.join(' ')} (#{where})"
      started = m.clock
      ok = m.run(m::SCRIPT, "test", version, *m.tasks, limit: m.limit)
      [version, ok, m.clock - started]
    end
    m.banner "Ruby matrix summary"
    results.each do |version, ok, seconds|
      puts format("  Ruby %-5s %-7s %6.1fs", version, ok ? "ok" : "FAILED", seconds)
    end
    failed = results.reject { |_, ok, _| ok }.map(&:first)
    $stdout.flush
    abort "test:matrix failed on Ruby #{failed.join(', ')}" unless failed.empty?
  end
end
