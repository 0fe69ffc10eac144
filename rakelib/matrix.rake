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

  # Run a command; on Ctrl-C / SIGTERM forward the signal and wait (up to 30 s, whatever other
  # signals arrive: timeout(1) signals both its child and the process group), so that the chroot
  # side has unmounted everything before rake exits.
  def run(*cmd)
    pid = Process.spawn(*cmd)
    begin
      Process.wait(pid)
    rescue Interrupt, SignalException => e
      begin
        Process.kill(e.is_a?(Interrupt) ? "INT" : e.signo, pid)
      rescue Errno::ESRCH
        nil
      end
      wait_a_little(pid, 30)
      raise
    end
    $?.success?
  end

  def wait_a_little(pid, seconds)
    deadline = clock + seconds
    begin
      sleep 0.05 until Process.wait(pid, Process::WNOHANG) || clock > deadline
    rescue Interrupt, SignalException
      retry
    rescue Errno::ECHILD
      nil
    end
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
    UringMachineMatrix.run(UringMachineMatrix::SCRIPT, "shell", version)
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
      ok = m.run(m::SCRIPT, "test", version, *m.tasks)
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
