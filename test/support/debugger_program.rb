# frozen_string_literal: true

# Run by test/test_debugger_terminal.rb in a tmux pane: a sleeper fiber and a worker fiber that
# stops at a breakpoint.
require "uring_machine/global"

machine = UringMachine.machine
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
sleeper = spin do
  machine.sleep(1)
  puts format("sleeper woke after %.1f s", Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
end
worker = spin do
  total = 40
  machine.snooze
  breakpoint
  total += 2
  machine.sleep(0.01)
  puts "total is #{total}"
end
machine.join(worker)
machine.join(sleeper)
puts "program done"
