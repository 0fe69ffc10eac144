# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/tmux_pane"

# The debugger on a real terminal: a program runs in a tmux pane (a private tmux server),
# commands are typed with send-keys, and the screen is read with capture-pane.
class TestDebuggerTerminal < Minitest::Test
  include TmuxPane

  PROGRAM = File.expand_path("support/debugger_program.rb", __dir__)

  def setup
    super
    start_in_tmux(PROGRAM)
  end

  def teardown
    stop_tmux
    super
  end

  def test_a_session_on_a_terminal
    text = wait_for(/\(um\) \z|\(um\)\s*\z/)
    assert_match(/^=> 17\|   total \+= 2$/, text, "the source window marks the line after the breakpoint")
    assert_match(/^   16\|   breakpoint$/, text)

    type "total"
    assert_match(/^=> 40$/, wait_for(/^=> 40$/))

    type "fibers"
    text = wait_for(/^run queue:/)
    assert_match(/^\*\s+\d+ +fiber 0x\h+ \(.*debugger_program.rb:13\)  stopped here$/, text)
    assert_match(/fiber 0x\h+ \(.*debugger_program.rb:9\)  sleeping, 1\.\d\d s left|sleeping, 0\.9\d s left/, text)

    sleep 1.5 # time at the prompt: the sleeper's 1 s timer must not fire meanwhile
    type "next"
    text = wait_for(/^=> 18\|   machine.sleep\(0.01\)$/)
    refute_match(/sleeper woke/, text, "the sleeper's timer did not fire while stopped")
    type "next"
    text = wait_for(/^=> 19\|   puts "total is/)
    refute_match(/sleeper woke/, text, "next stayed in the worker fiber; the sleeper still sleeps")

    type "eval total * 10"
    wait_for(/^=> 420$/)
    type "continue"
    text = wait_for(/EXITED 0/)
    assert_match(/total is 42/, text)
    woke = text[/sleeper woke after (\d+\.\d) s/, 1]
    assert woke, text
    assert_operator woke.to_f, :>=, 2.4, "1 s of program time plus the time spent stopped"
    assert_match(/program done/, text)
  end

  # Ctrl-C at the prompt gives the prompt again and the session goes on, as in irb; it does
  # not end the program with a trace through the debugger.
  def test_ctrl_c_at_the_prompt_gives_the_prompt_again
    wait_for(/\(um\) \z|\(um\)\s*\z/)
    press_ctrl_c
    wait_for(/^\(um\) \^C\n\(um\)\s*\z/)
    press_ctrl_c
    wait_for(/^\(um\) \^C\n\(um\) \^C\n\(um\)\s*\z/)
    type "total"
    text = wait_for(/^=> 40$/)
    refute_match(/Interrupt|EXITED/, text)
    assert_equal 4, text.scan("(um)").size, "the first prompt, one after each Ctrl-C and one after the command:\n#{text}"

    type "continue"
    text = wait_for(/EXITED 0/)
    assert_match(/total is 42/, text)
    assert_match(/program done/, text)
  end
end
