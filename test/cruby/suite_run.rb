# frozen_string_literal: true

# CRuby's own tests (files of a CRuby source tree of this Ruby's version, grouped in SUITES) run
# twice, each time in processes of their own: plainly, then with every test method inside a
# non-blocking fiber under UringMachine::Scheduler (see suite_child.rb). The outcomes must match,
# test by test, but for the differences test/cruby/expected_differences.rb lists with their
# reason (see rakelib/cruby.rake).
#
#   ruby test/cruby/suite_run.rb SUITE CRUBY_SOURCE_TREE      SUITE: io or stdlib
#
#   UM_CRUBY_SUITE_TIMEOUT=900   seconds per run (plain or scheduled) in all
#   UM_CRUBY_TEST_TIMEOUT=60     seconds per test: a test that takes longer is recorded as a
#                                timeout (named, with the end of its output), its process killed,
#                                and the run goes on in a new process without the tests done;
#                                a process that dies in a test likewise (that test is recorded
#                                as "died")
#   UM_CRUBY_FILES="thread timeout"  only the files whose path contains one of these words
require "rbconfig"
require "tmpdir"
require_relative "source_tree"
require_relative "expected_differences"

module CRubySuite
  LIB_DIR = File.expand_path("../../lib", __dir__)
  CHILD = File.expand_path("suite_child.rb", __dir__)
  SUITES = {
    "io" => %w[test/ruby/test_io.rb test/ruby/test_io_m17n.rb],
    "stdlib" => %w[test/socket/test_socket.rb test/socket/test_tcp.rb test/socket/test_unix.rb
                   test/socket/test_basicsocket.rb test/socket/test_addrinfo.rb
                   test/socket/test_nonblock.rb test/socket/test_udp.rb
                   test/test_timeout.rb test/ruby/test_thread.rb test/ruby/test_thread_queue.rb
                   test/ruby/test_thread_cv.rb test/monitor/test_monitor.rb test/ruby/test_process.rb
                   test/test_open3.rb test/test_tempfile.rb test/test_pty.rb
                   test/openssl/test_ssl.rb test/net/http/test_http.rb]
  }.freeze

  module_function

  def main(argv)
    suite, src = argv
    files = SUITES[suite] or abort("usage: ruby #{$PROGRAM_NAME} #{SUITES.keys.join('|')} CRUBY_SOURCE_TREE")
    src = File.expand_path(src || abort("usage: ruby #{$PROGRAM_NAME} #{suite} CRUBY_SOURCE_TREE"))
    CRubySourceTree.check_version(src)
    files = files.select { |f| File.exist?(File.join(src, f)) }
    words = ENV.fetch("UM_CRUBY_FILES", "").split
    files = files.select { |f| words.any? { |w| f.include?(w) } } unless words.empty?
    limits = { run: Integer(ENV.fetch("UM_CRUBY_SUITE_TIMEOUT", "900")),
               test: Integer(ENV.fetch("UM_CRUBY_TEST_TIMEOUT", "60")) }
    puts "CRuby #{CRubySourceTree.version(src)} #{files.join(' ')}, plain and under " \
         "UringMachine::Scheduler, on #{RUBY_DESCRIPTION}"
    Dir.mktmpdir("uring_machine-cruby-suite-") do |dir|
      plain = run_suite(src, files, dir, "plain", limits)
      scheduled = run_suite(src, files, dir, "scheduled", limits)
      exit(compare(plain, scheduled) ? 0 : 1)
    end
  end

  # Runs the tests, in as many processes as hung tests need; returns {"Class#method" => status},
  # or nil if a process ended badly or the run took too long.
  def run_suite(src, files, dir, mode, limits)
    record = File.join(dir, "#{mode}.record")
    started = now
    processes = 0
    loop do
      processes += 1
      ended = run_process(src, files, dir, mode, record, started + limits[:run], limits[:test], processes)
      break if ended == :done
      next if ended == :again

      report(mode, outcomes(record), started, processes)
      return nil
    end
    report(mode, outcomes(record), started, processes)
  end

  # One process that runs the tests not yet recorded: :done, :again (it hung or died in a test,
  # recorded as such), or :failed.
  def run_process(src, files, dir, mode, record, deadline, test_limit, number)
    current = File.join(dir, "#{mode}.current")
    log = File.join(dir, "#{mode}.#{number}.log")
    File.write(current, "")
    env = { "UM_SUITE_RECORD" => record, "UM_SUITE_CURRENT" => current,
            "UM_SUITE_SCHEDULED" => (mode == "scheduled" ? "1" : "0") }
    requires = files.map { |f| "require #{File.join(src, f).dump}" }.join("; ")
    command = [RbConfig.ruby, "-I", LIB_DIR, "-I", File.join(src, "tool/lib"), "-I", File.join(src, "test/lib"),
               "-e", "require 'test/unit'; require #{CHILD.dump}; #{requires}"]
    pid = Process.spawn(env, *command, chdir: dir, in: File::NULL, %i[out err] => log, pgroup: true)
    loop do
      _, status = Process.wait2(pid, Process::WNOHANG)
      test, since = current_test(current)
      if status
        # test/unit exits 1 when a test failed: what matters is that no test was left unfinished
        return :done if status.exited? && !test
        return failed(mode, "ended with #{status.inspect}", log) unless test

        return test_ended(mode, record, test, "died", "ended the process (#{status.inspect})", log)
      end
      if test && now - since > test_limit
        kill(pid)
        return test_ended(mode, record, test, "timeout", "did not end in #{test_limit}s", log)
      end
      return failed(mode, "timed out", log, pid) if now > deadline

      sleep 0.1
    end
  end

  def test_ended(mode, record, test, status, how, log)
    File.open(record, "a") { |f| f.puts "#{test}\t#{status}" }
    puts "#{mode}: #{test} #{how}; its output ends:"
    puts tail(log)
    :again
  end

  # The test the process runs now, and since when (the child writes its name before it starts).
  def current_test(path)
    name = File.read(path).strip
    [name, File.mtime(path).to_f - Time.now.to_f + now] unless name.empty?
  rescue Errno::ENOENT
    nil
  end

  def failed(mode, how, log, pid = nil)
    kill(pid) if pid
    puts "#{mode} run #{how}; its output ends:"
    puts tail(log)
    :failed
  end

  def kill(pid)
    Process.kill(:KILL, -pid)
    Process.wait(pid)
  rescue Errno::ESRCH, Errno::ECHILD
    nil
  end

  def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

  def tail(log) = File.readlines(log).last(30).map { |l| "  #{l}" }

  def outcomes(record)
    File.exist?(record) ? File.readlines(record, chomp: true).to_h { |l| l.split("\t", 2) } : {}
  end

  def report(mode, outcomes, started, processes)
    puts format("%-9s %3d tests in %5.1fs (%d process%s): %s", mode, outcomes.size, now - started,
                processes, processes == 1 ? "" : "es", tally(outcomes))
    outcomes
  end

  def tally(outcomes)
    outcomes.values.map { |s| s.split.first }.tally.sort.map { |s, n| "#{n} #{s}" }.join(", ")
  end

  # A test that passes one way and is skipped (omit) the other did not go wrong either way:
  # some tests skip when other threads are alive, and a scheduler's worker threads may be.
  def same_outcome?(was, now)
    was == now || [was, now].sort == %w[pass skip]
  end

  # Prints the differences; true when each one is expected.
  def compare(plain, scheduled)
    return false unless plain && scheduled

    differences = (plain.keys | scheduled.keys).sort.filter_map do |name|
      was = plain.fetch(name, "not run")
      now = scheduled.fetch(name, "not run")
      [name, was, now] unless same_outcome?(was, now)
    end
    unexpected = differences.reject { |name, *| ExpectedDifferences.reason(name) }
    differences.each do |name, was, now|
      reason = ExpectedDifferences.reason(name)
      puts "#{reason ? 'EXPECTED' : 'DIFFERS '} #{name}: plain #{was}, scheduled #{now}#{" (#{reason})" if reason}"
    end
    puts "#{plain.size} tests, #{differences.size} differ, #{unexpected.size} unexpectedly"
    unexpected.empty?
  end
end

CRubySuite.main(ARGV) if $PROGRAM_NAME == __FILE__
