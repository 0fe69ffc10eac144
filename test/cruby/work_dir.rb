# frozen_string_literal: true

require "fileutils"
require_relative "scheduler_swap"

module CRubyFiberSuite
  # A copy of CRuby's test/fiber in which scheduler.rb is our replacement (the tests load it with
  # `require_relative 'scheduler'`, and child Rubies with `-I#{__dir__}`, so it has to sit next to
  # them). Every test file is taken: the few that do not use the scheduler (test_backtrace.rb,
  # test_storage.rb, ...) run with our gem loaded all the same.
  class WorkDir
    Test = Struct.new(:name, :file) # name: "TestFiberIO#test_read"

    attr_reader :path

    def initialize(src, path, lib_dir)
      @fiber_dir = File.join(src, "test", "fiber")
      @path = path
      @lib_dir = lib_dir
      raise "#{@fiber_dir}/scheduler.rb not found: is #{src} a CRuby source tree?" unless File.file?(scheduler)
    end

    def create
      FileUtils.rm_rf(@path)
      FileUtils.mkdir_p(File.join(@path, "logs"))
      Dir.children(@fiber_dir).sort.each do |name|
        next if name == "scheduler.rb"

        FileUtils.cp_r(File.join(@fiber_dir, name), @path)
      end
      File.write(File.join(@path, "scheduler.rb"), SchedulerSwap.generate(scheduler, @lib_dir))
      self
    end

    # Every test method of every test file, in file order.
    def tests
      Dir.glob(File.join(@path, "test_*.rb")).sort.flat_map do |file|
        methods_of(File.read(file)).map { |name| Test.new(name, file) }
      end
    end

    private

    def scheduler
      File.join(@fiber_dir, "scheduler.rb")
    end

    def methods_of(source)
      klass = nil
      source.each_line.filter_map do |line|
        if (m = line.match(/\A\s*class\s+(\w+)\s*<\s*Test::Unit::TestCase\b/))
          klass = m[1]
          nil
        elsif klass && (m = line.match(/\A\s*def\s+(test_\w+[?!]?)/))
          "#{klass}##{m[1]}"
        end
      end.uniq
    end
  end
end
