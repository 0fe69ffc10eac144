# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"

# UringMachine.patches lists everything the gem changes in Ruby's own classes
# (lib/uring_machine/core_ext/), and each listed change is really there.
class TestPatches < Minitest::Test
  include ChildRuby::Assertions

  ROOT = File.expand_path("..", __dir__)
  KEYS = %i[class singleton module name methods mechanism installed_when in_place ruby_versions switch source why].freeze
  LIMIT = 30

  # Makes a Machine and a Scheduler (as a program that uses the gem does) and opts in to the
  # global functions: every moment has come. A Scheduler stays open during the test, so that
  # the patches in place only while one is open are.
  def setup
    super
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    Fiber.schedule { nil }
    Fiber.set_scheduler(nil)
    require "uring_machine/global"
    @open = UringMachine::Scheduler.new
  end

  def teardown
    @open&.close
    super
  end

  def patches
    UringMachine.patches
  end

  def test_the_list_is_frozen_and_each_entry_has_the_documented_shape
    assert patches.frozen?
    refute_empty patches
    patches.each do |entry|
      assert entry.frozen?, entry[:name]
      assert_equal KEYS, entry.keys, entry[:name]
      assert entry[:methods].frozen?, entry[:name]
      assert_kind_of Module, entry[:class]
      assert_includes UringMachine::CoreExt::MECHANISMS, entry[:mechanism]
      assert_includes UringMachine::CoreExt::MOMENTS, entry[:installed_when]
      assert_includes UringMachine::CoreExt::IN_PLACE, entry[:in_place]
      assert UringMachine::CoreExt.ruby?(entry[:ruby_versions]), "#{entry[:name]} is not for this Ruby"
      assert File.file?(File.join(ROOT, entry[:source])), "#{entry[:name]}: no #{entry[:source]}"
      assert_kind_of String, entry[:why]
    end
  end

  def test_every_declared_patch_for_this_ruby_is_installed_once_every_moment_came
    expected = UringMachine::CoreExt.declared.select { |e| UringMachine::CoreExt.ruby?(e[:ruby_versions]) }
    assert_equal expected.map { |e| [e[:class], e[:name]] }.sort_by(&:inspect),
                 patches.map { |e| [e[:class], e[:name]] }.sort_by(&:inspect)
  end

  def test_each_prepended_module_is_in_its_class_ancestors_and_defines_its_methods
    prepended = patches.select { |e| e[:mechanism] == :prepend }
    assert_operator prepended.size, :>=, 10
    prepended.each do |entry|
      target = entry[:singleton] ? entry[:class].singleton_class : entry[:class]
      assert_includes target.ancestors, entry[:module], entry[:name]
      assert_operator target.ancestors.index(entry[:module]), :<, target.ancestors.index(target), "#{entry[:name]} is prepended"
      entry[:methods].each do |name|
        assert_equal entry[:module], entry[:module].instance_method(name).owner, "#{entry[:name]} defines #{name}"
        # Ours runs, or what another library prepended later runs first and reaches ours with
        # super (connection_pool's ForkTracker wraps Process._fork so).
        owner = target.instance_method(name).owner
        assert_operator target.ancestors.index(owner), :<=, target.ancestors.index(entry[:module]),
                        "#{entry[:name]} overrides #{target}##{name}"
      end
    end
  end

  def test_each_aliased_method_is_ours_with_crubys_kept_under_a_private_alias
    aliased = patches.select { |e| e[:mechanism] == :alias }
    assert_equal [[IO, %i[read_nonblock syswrite]], [BasicSocket, %i[recv]]], aliased.map { |e| [e[:class], e[:methods]] }
    aliased.each do |entry|
      klass = entry[:class]
      entry[:methods].each do |name|
        ours = klass.instance_method(name)
        # Ruby code in the core_ext file, or a method of the extension (IO#syswrite: see there)
        assert_equal klass, ours.owner, name
        assert_includes [File.join(ROOT, entry[:source]), nil], ours.source_location&.first, name
        cruby = :"__cruby_#{name}"
        assert klass.private_method_defined?(cruby), "#{klass}##{cruby}"
        refute_equal klass.instance_method(cruby), ours, "#{klass}##{name} is replaced"
        where = klass.instance_method(cruby).source_location&.first
        assert(where.nil? || where.start_with?("<internal:"), "#{klass}##{cruby} is CRuby's method, not #{where}")
      end
    end
  end

  def test_the_method_the_extension_defines_is_in_the_class_itself
    defined = patches.select { |e| e[:mechanism] == :define }
    assert_equal [[Fiber, %i[<<]]], defined.map { |e| [e[:class], e[:methods]] }
    method = Fiber.instance_method(:<<)
    assert_equal [Fiber, nil], [method.owner, method.source_location]
  end

  def test_the_wrapped_allocator_records_the_thread_of_each_fiber
    assert(patches.any? { |e| e[:class] == Fiber && e[:mechanism] == :allocator })
    other_threads_fiber = Thread.new { Fiber.new { nil } }.value
    error = assert_raises(ArgumentError) { UringMachine::Machine.new.schedule(other_threads_fiber) }
    assert_match(/thread/, error.message)
  end

  # A fresh process that only requires the gem: the :gem_load patches only, and none of the
  # :first_machine / :first_scheduler / :require_global ones is in place.
  def test_a_process_that_makes_no_machine_has_only_the_gem_load_patches
    report, = child_report("-w", "-e", <<~RUBY, limit: LIMIT)
      require "uring_machine"
      require "json"
      later = UringMachine::CoreExt.declared.reject { |e| e[:installed_when] == :gem_load }
      prepended = later.select { |e| e[:mechanism] == :prepend }.map do |e|
        (e[:singleton] ? e[:class].singleton_class : e[:class]).ancestors.include?(e[:module])
      end
      aliased = later.select { |e| e[:mechanism] == :alias }.flat_map do |e|
        e[:methods].map { |m| e[:class].private_method_defined?(:"__cruby_\#{m}") }
      end
      puts JSON.generate(moments: UringMachine.patches.map { |e| e[:installed_when] }.uniq,
                         later: later.size, prepended: prepended.uniq, aliased: aliased.uniq)
    RUBY
    assert_equal({ "moments" => ["gem_load"], "prepended" => [false], "aliased" => [false] }, report.except("later"))
    assert_operator report["later"], :>=, 6
  end

  # The same process once it made a Scheduler: every moment but the opt-in's has come, and the
  # IO::Buffer warning the first hook would have caused was spent quietly (-w prints nothing).
  def test_the_first_scheduler_installs_the_rest
    report, out = child_report("-w", "-e", <<~RUBY, limit: LIMIT)
      require "uring_machine"
      require "json"
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule { IO::Buffer.new(1).free }
      Fiber.set_scheduler(nil)
      installed = UringMachine.patches.map { |e| e[:installed_when] }.uniq
      fiber_yield = Fiber.singleton_class.ancestors.include?(UringMachine::FiberYieldSuspends)
      puts JSON.generate(moments: installed, fiber_yield: fiber_yield,
                         kernel: Kernel.ancestors.include?(UringMachine::GlobalFunctions))
    RUBY
    assert_equal({ "moments" => %w[gem_load first_scheduler first_machine], "fiber_yield" => true, "kernel" => false },
                 report)
    assert_equal 1, out.lines.size, "nothing but the report (no warning): #{out}"
  end

  # The IO fast paths act only under our scheduler: once no Scheduler is open, IO has CRuby's
  # methods again (the prepended modules are empty, the aliased methods are CRuby's), and the
  # next Scheduler puts them back. Switching gives no warning (-w).
  def test_the_fast_paths_are_in_place_only_while_a_scheduler_is_open
    report, out = child_report("-w", "-e", <<~RUBY, limit: LIMIT)
      require "uring_machine"
      require "json"
      switched = UringMachine::CoreExt.declared.select do |e|
        e[:in_place] == :while_a_scheduler_is_open && UringMachine::CoreExt.ruby?(e[:ruby_versions])
      end
      state = lambda do
        switched.flat_map do |e|
          target = e[:singleton] ? e[:class].singleton_class : e[:class]
          e[:methods].map do |name|
            method = target.instance_method(name)
            ours = if e[:mechanism] == :prepend
                     method.owner == e[:module]
                   else
                     method != target.instance_method(:"__cruby_\#{name}")
                   end
            [name, ours]
          end
        end.group_by(&:last).transform_values { |pairs| pairs.map(&:first).size }.transform_keys(&:to_s)
      end
      line = lambda do
        r, w = IO.pipe
        got = nil
        Thread.new do
          Fiber.set_scheduler(UringMachine::Scheduler.new)
          Fiber.schedule { w.puts("hi") }
          Fiber.schedule { got = r.gets }
        end.join
        got
      end
      steps = {}
      steps[:first] = [line.call, state.call, UringMachine::CoreExt::SchedulersOpen.in_place?]
      a = UringMachine::Scheduler.new
      b = Thread.new { UringMachine::Scheduler.new }.value
      steps[:two_open] = [state.call, UringMachine::CoreExt::SchedulersOpen.open]
      a.close
      a.close
      steps[:one_closed_twice] = [state.call, UringMachine::CoreExt::SchedulersOpen.open]
      b.close
      steps[:none_open] = [state.call, UringMachine::CoreExt::SchedulersOpen.open]
      steps[:again] = [line.call, state.call]
      begin
        UringMachine::Scheduler.new(:bad)
      rescue TypeError
        steps[:failed_new] = [state.call, UringMachine::CoreExt::SchedulersOpen.open]
      end
      puts JSON.generate(steps.merge(names: switched.sum { |e| e[:methods].size }))
    RUBY
    none = { "false" => report["names"] }
    all = { "true" => report["names"] }
    assert_operator report["names"], :>=, 19
    assert_equal ["hi\n", none, false], report["first"]
    assert_equal [all, 2], report["two_open"]
    assert_equal [all, 1], report["one_closed_twice"], "a scheduler closed twice counts out once"
    assert_equal [none, 0], report["none_open"]
    assert_equal ["hi\n", none], report["again"]
    assert_equal [none, 0], report["failed_new"], "a Scheduler.new that raised is not counted"
    assert_equal 1, out.lines.size, "nothing but the report (no warning): #{out}"
  end

  # While a Scheduler is open (setup keeps one), a thread without one goes through the fast
  # paths to CRuby's methods, whatever way they are called: an Enumerator calls each_line with
  # no arguments at all (a NULL argv: once a panic, "Option::unwrap() on a None value", on 4.0).
  def test_a_thread_without_our_scheduler_gets_crubys_methods_while_one_is_open
    assert UringMachine::CoreExt::SchedulersOpen.in_place?
    got = Thread.new do
      r, w = IO.pipe
      w.write("a\nb\nc\n")
      w.close
      [r.each_line.to_a, r.each_line.first, r.each_char.to_a, r.enum_for(:each_line, chomp: true).to_a]
    end.value
    assert_equal [%W[a\n b\n c\n], nil, [], []], got
    got = Thread.new do
      r, w = IO.pipe
      w.puts
      w.print
      w.write
      w.write("x")
      w.close
      [r.method(:getc).call, r.getbyte, r.read, r.eof?, r.gets, r.readlines]
    end.value
    assert_equal ["\n", 120, "", true, nil, []], got
  end

  def test_install_runs_each_moment_once
    refute UringMachine::CoreExt.install(:first_machine)
    assert_raises(ArgumentError) { UringMachine::CoreExt.install(:never) }
  end

  def test_ruby_versions
    ruby = ->(versions, version) { UringMachine::CoreExt.ruby?(versions, version) }
    assert ruby.call("3.1+", "3.1.2")
    assert ruby.call("3.1+", "4.0.0")
    refute ruby.call("3.2+", "3.1.9")
    assert ruby.call("3.1", "3.1.0")
    refute ruby.call("3.1", "3.2.0")
    assert ruby.call("3.3-3.4", "3.4.1")
    refute ruby.call("3.3-3.4", "3.2.9")
    refute ruby.call("3.3-3.4", "3.5.0")
    assert ruby.call("< 4.0", "3.5.0")
    refute ruby.call("< 4.0", "4.0.0")
    assert_raises(ArgumentError) { ruby.call(">= 3.1", "3.1.0") }
    assert_raises(ArgumentError) { ruby.call("3.1+-3.4", "3.1.0") }
  end

  # The README's table names every change declared, for every Ruby.
  def test_the_readme_table_lists_every_patch
    readme = File.read(File.join(ROOT, "README.md"))
    section = readme[/^## What uring_machine changes in Ruby\n.*?(?=^## )/m]
    refute_nil section, "README.md has no section 'What uring_machine changes in Ruby'"
    UringMachine::CoreExt.declared.each do |entry|
      label = entry[:module] ? entry[:module].name.delete_prefix("UringMachine::") : entry[:name]
      assert_includes section, "`#{label}`", "the README's table lacks #{entry[:name]}"
    end
  end
end
