# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"

# lib/ is laid out by concern (README.md, "Where things are"): each file says first what it
# owns, and every file is loaded by one of the gem's entry points, so that nothing moved is left
# behind unrequired.
class TestLibLayout < Minitest::Test
  include ChildRuby::Assertions

  LIB = File.expand_path("../lib", __dir__)
  FILES = Dir.glob("**/*.rb", base: LIB).sort.freeze

  def test_every_file_starts_with_a_comment_saying_what_it_owns
    refute_empty FILES
    FILES.each do |file|
      head = File.foreach(File.join(LIB, file)).first(3)
      assert_equal ["# frozen_string_literal: true\n", "\n"], head.first(2), file
      assert_match(/\A# \S/, head[2].to_s, "#{file}: its third line is not a comment saying what it owns")
    end
  end

  # The entry points: the gem, the opt-in global functions, DNS (autoloaded), the debugger
  # (loaded by the first breakpoint), the Rack server and its handlers (each where its rack or
  # rackup loads: rackup requires them).
  def test_the_entry_points_load_every_file
    program = <<~RUBY
      require "uring_machine"
      require "uring_machine/global"
      UringMachine.const_get(:DNS) # its autoload
      require "uring_machine/debugger"
      require "uring_machine/rack"
      # Each needs a library that may be missing here (Rack 2, the rackup gem, ActiveRecord 6.1,
      # Sidekiq 6.4; its CLI, which the sidekiq command loads before the application).
      begin
        $VERBOSE = nil # Sidekiq 6.4 reads $TESTING unset
        require "sidekiq/cli"
      rescue LoadError
        nil
      ensure
        $VERBOSE = true
      end
      lib = "#{LIB}/"
      %w[rack/handler/uring_machine rackup/handler/uring_machine uring_machine/active_record
         uring_machine/sidekiq].each do |entry|
        require entry
      rescue LoadError # (the entry and the files it alone loads: those in its folder)
        puts "\#{entry}.rb", Dir.glob("\#{entry}/**/*.rb", base: lib)
      end
      puts $LOADED_FEATURES.select { _1.start_with?(lib) && _1.end_with?(".rb") }.map { _1.delete_prefix(lib) }
    RUBY
    child = run_ruby("-w", "-e", program, limit: 30, merge_err: true)
    assert child.status.success?, child.out
    assert_equal FILES, child.out.lines(chomp: true).sort
  end
end
