# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# The usual case for a script: the scheduler on the main thread of a process with no other
# thread (on Ruby 3.1 a lone main thread waiting without the GVL used to fiber-join a helper
# thread nobody woke). Runs in a child process, bounded by a timeout.
class TestSchedulerMainThread < Minitest::Test
  SCRIPT = <<~RUBY
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    r, w = IO.pipe
    Fiber.schedule { 1000.times { w.write("x" * 1024) }; w.close }
    Fiber.schedule do
      total = 0
      buffer = +""
      total += buffer.bytesize while r.readpartial(65_536, buffer)
    rescue EOFError
      print total
    end
  RUBY

  def test_pipe_between_fibers_on_a_lone_main_thread
    lib = File.expand_path("../lib", __dir__)
    output = IO.popen(["timeout", "-s", "KILL", "30", RbConfig.ruby, "-I", lib, "-ruring_machine", "-e", SCRIPT], &:read)
    assert $?.success?, "the script did not finish (#{$?.inspect})"
    assert_equal "1024000", output
  end
end
