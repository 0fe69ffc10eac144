# frozen_string_literal: true

require_relative "child_ruby"
require "tmpdir"
require "fileutils"
require "shellwords"

# A program in a tmux pane of a private tmux server, for the tests of what a user sees on a
# real terminal: keys are typed with send-keys, the screen is read with capture-pane.
module TmuxPane
  DEADLINE = 15

  # Starts +program+ (a Ruby file, run with -w and lib/ on the load path) in the pane; the pane
  # shows "EXITED <status>" when it ends. Skips (saying why) without tmux.
  def start_in_tmux(program)
    skip "tmux is not installed (Debian package tmux): the terminal tests need it" unless system("command -v tmux >/dev/null 2>&1")
    @dir = Dir.mktmpdir("uring_machine_tmux")
    @socket = File.join(@dir, "socket") # a private tmux server
    tmux("new-session", "-d", "-x", "120", "-y", "50", "-s", "debug",
         "#{ChildRuby.command('-w', program).shelljoin}; echo EXITED $?; sleep 60")
  end

  def stop_tmux
    system("tmux", "-S", @socket, "kill-server", out: File::NULL, err: File::NULL) if @socket
    FileUtils.rm_rf(@dir) if @dir
  end

  def tmux(*args)
    assert system("tmux", "-S", @socket, *args, out: File::NULL, err: File::NULL), "tmux #{args.first} failed"
  end

  def screen
    IO.popen(["tmux", "-S", @socket, "capture-pane", "-p", "-J", "-S", "-200", "-t", "debug"], &:read)
  end

  # Polls the screen until +pattern+ shows up (or fails at the deadline); returns the screen.
  def wait_for(pattern)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + DEADLINE
    loop do
      text = screen
      return text if text.match?(pattern)

      flunk "#{pattern.inspect} did not appear; the screen:\n#{text}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.05 # polling interval, not a wait for something to happen
    end
  end

  def type(line)
    tmux("send-keys", "-t", "debug", "-l", line)
    tmux("send-keys", "-t", "debug", "Enter")
  end

  # Ctrl-C, as the terminal sends it (the foreground process gets SIGINT).
  def press_ctrl_c
    tmux("send-keys", "-t", "debug", "C-c")
  end
end
