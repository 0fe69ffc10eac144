# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/tmux_pane"

# Ctrl-C at the debugger's prompt, on a real terminal (tmux): the prompt comes back and the
# session goes on, as in irb; it does not end the program with a trace through the debugger.
class TestDebuggerCtrlC < Minitest::Test
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
