# frozen_string_literal: true

require_relative "child_ruby"

# The Rack server as a process of its own (a program or rackup), for the tests that signal it
# or need a server that is not in the test's process.
module RackProcesses
  # Starts a server process; yields [pid, port, its stdin, its stdout, its stderr]; reaps it.
  def with_server_process(*args, command: ChildRuby.command("-e", self.class::PROGRAM, *args), env: {})
    stdin_r, stdin = IO.pipe
    stdout, stdout_w = IO.pipe
    stderr, stderr_w = IO.pipe
    pid = Process.spawn(env, *command, in: stdin_r, out: stdout_w, err: stderr_w)
    [stdin_r, stdout_w, stderr_w].each(&:close)
    port = listening_port(stderr)
    yield pid, port, stdin, stdout, stderr
  ensure
    Process.kill(:KILL, pid) if pid && !@reaped
    Process.wait(pid) if pid && !@reaped
    [stdin, stdout, stderr].each { |io| io&.close }
  end

  # The port of the server's "listening on" line (lines before it, warnings, are skipped).
  def listening_port(stderr)
    seen = +""
    while stderr.wait_readable(LINE_LIMIT) && (line = stderr.gets)
      port = line[/uring_machine: listening on http:\/\/[^:]+:(\d+)/, 1] and return Integer(port)
      seen << line
    end
    flunk "the server exited before listening:\n#{seen}"
  end

  # A bound on the wait for each line of a server's log, so that a server that never says what
  # a test waits for fails that test instead of hanging the run.
  LINE_LIMIT = 30

  # The next line of +io+ that matches +pattern+ (the lines before it are skipped).
  def line_matching(io, pattern)
    while io.wait_readable(LINE_LIMIT) && (line = io.gets)
      return line if line.match?(pattern)
    end
    flunk "no line matching #{pattern.inspect}"
  end

  def reap(pid)
    children = worker_pids(pid)
    status, killed = ChildRuby.wait(pid, 30)
    @reaped = true
    flunk "the server did not stop (its workers were #{children.join(', ')})" if killed
    status
  end

  # The children of +pid+, for the message of a server that did not stop. A thread of +pid+ can
  # end between the listing of its tasks and the read of its file.
  def worker_pids(pid)
    Dir.glob("/proc/#{pid}/task/*/children").flat_map do |file|
      File.read(file).split
    rescue Errno::ENOENT, Errno::ESRCH
      []
    end
  end

  # rackup: the rackup gem's (Rack 3), else rack's own (Rack 2), else the one beside the rack
  # on the load path (a Ruby that has Debian's rack on RUBYLIB, not as a gem).
  def rackup_path
    %w[rackup rack].each do |gem|
      return Gem.bin_path(gem, "rackup")
    rescue Gem::Exception
      next
    end
    beside = $LOAD_PATH.map { |dir| File.expand_path("../bin/rackup", dir) }.find { |path| File.file?(path) }
    beside || skip_with_reason("no rackup here: neither the rackup gem (Rack 3) nor rack 2's")
  end

  # rackup always loads Rack::ShowExceptions; rack 2.2's needs ostruct, which is no default gem
  # from Ruby 4.0 on.
  def rackup_loads!
    require "rack/show_exceptions"
  rescue LoadError => e
    skip_with_reason("rackup of rack #{::Rack.release} does not load on Ruby #{RUBY_VERSION}: #{e.message}")
  end
end
