# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"
require "pathname"
require "uring_machine/debugger"
require "uring_machine/rack"

# The RBS signatures of the public API (sig/) are valid for the rbs that ships with this Ruby
# (rbs 2.1 with 3.1, 3.x with 3.3 and 3.4), and every public method of the gem's classes and
# modules, and every method it adds to or replaces in Ruby's own classes, has one.
class TestSignatures < Minitest::Test
  include ChildRuby::Assertions

  SIG = File.expand_path("../sig", __dir__)
  # The standard libraries our signatures refer to (rbs 2.1 does not follow dependencies).
  LIBRARIES = %w[socket timeout resolv].freeze
  # A method found only in these is inherited by every object or module: not a signature of ours.
  INHERITED = %w[::BasicObject ::Object ::Kernel ::Module ::Class].freeze
  # What Struct.new defines on each struct class itself (declared by core's Struct signature).
  STRUCT_CLASS_METHODS = Struct.new(:member).singleton_class.public_instance_methods(false).freeze
  # The moments whose patches are signed on their module, not on the class they change.
  MODULE_SIGNED = %i[require_global require_sidekiq].freeze

  class << self
    # rbs's DefinitionBuilder over core, LIBRARIES and sig/ (built once), or the LoadError.
    def definitions
      @definitions ||= builder(SIG)
    end

    # The same without sig/: what core and LIBRARIES declare.
    def core_definitions
      @core_definitions ||= builder(nil)
    end

    private

    def builder(sig)
      require "rbs"
      loader = RBS::EnvironmentLoader.new
      LIBRARIES.each { |library| loader.add(library: library) }
      loader.add(path: Pathname(sig)) if sig
      RBS::DefinitionBuilder.new(env: RBS::Environment.from_loader(loader).resolve_type_names)
    rescue LoadError => e
      e
    end
  end

  # Everything is in place: the patches of the first Machine and the first Scheduler are
  # installed, and DNS (loaded by Scheduler.new) and the debugger are loaded.
  def setup
    super
    Thread.new do
      UringMachine::Machine.new
      UringMachine::Scheduler.new
    end.join
  end

  # `rbs validate` (this Ruby's rbs, in a child process), over core, LIBRARIES and sig/.
  def test_rbs_validate_accepts_the_signatures
    definitions
    libraries = LIBRARIES.flat_map { |library| ["-r", library] }
    result = run_ruby("-e", 'load Gem.bin_path("rbs", "rbs")', "--", *libraries, "-I", SIG, "validate", limit: 120)
    assert result.status.success?, "rbs validate failed:\n#{result.err}"
  end

  def test_every_public_method_of_the_gem_has_a_signature
    methods = gem_modules.flat_map do |mod|
      singleton = mod.singleton_class.public_instance_methods(false)
      singleton -= STRUCT_CLASS_METHODS if mod.is_a?(Class) && mod < Struct
      mod.public_instance_methods(false).map { |name| [mod, :instance, name] } +
        singleton.map { |name| [mod, :singleton, name] }
    end
    methods.reject! { |_, _, name| name.start_with?("__") } # internal: see sig/uring_machine.rbs
    assert_operator methods.size, :>, 250
    assert_all_signed methods
  end

  # UringMachine::CoreExt.declared: what UringMachine.patches lists once installed, for every
  # Ruby and every moment. The opt-in global functions, and Kernel#trap, are signed on their
  # module (sig/uring_machine/core_ext.rbs says why), as are the changes to Sidekiq's classes
  # (once uring_machine/sidekiq is loaded), which have no signatures of their own here.
  def test_every_method_the_gem_adds_to_or_replaces_in_ruby_classes_has_a_signature
    methods = UringMachine::CoreExt.declared.flat_map do |entry|
      # Kernel's methods count as inherited (INHERITED): those the gem adds to it are checked
      # on their module
      on_module = MODULE_SIGNED.include?(entry[:installed_when]) || entry[:class] == Kernel
      owner = on_module ? entry[:module] : entry[:class]
      entry[:methods].map { |name| [owner, entry[:singleton] ? :singleton : :instance, name] }
    end
    assert_includes methods, [Fiber, :instance, :join]
    assert_includes methods, [Thread, :instance, :fiber_lock]
    assert_all_signed methods
  end

  # sig/ adds to the classes the gem patches and changes nothing core declares in them (with
  # rbs 2.1, a `prepend` there would give IO#puts, Thread#exit, ... Kernel's private ones),
  # except where a patch itself defines a method the class only inherits from Kernel (Fiber.select
  # over Kernel#select).
  def test_the_signatures_leave_what_core_declares_in_the_patched_classes_as_it_was
    definitions # skips without rbs
    core = self.class.core_definitions
    core_patches = UringMachine::CoreExt.declared.reject { |entry| entry[:installed_when] == :require_sidekiq }
    patched = core_patches.group_by { |entry| [entry[:class], entry[:singleton]] }
    changed = patched.flat_map do |(mod, singleton), entries|
      type_name = RBS::Namespace.parse("::#{mod.name}").to_type_name
      build = singleton ? :build_singleton : :build_instance
      ours = definitions.public_send(build, type_name).methods
      defined_here = entries.flat_map { |entry| entry[:methods] }
      core.public_send(build, type_name).methods.filter_map do |name, method|
        mine = ours[name]
        next if mine && [mine.defined_in, mine.accessibility] == [method.defined_in, method.accessibility]
        next if mine && defined_here.include?(name) && INHERITED.include?(method.defined_in.to_s)

        "#{mod}#{singleton ? '.' : '#'}#{name}"
      end
    end
    assert_empty changed, "methods whose signature sig/ changed"
  end

  # The gem ships them (the gemspec takes git-tracked files that match its patterns).
  def test_the_gemspec_ships_every_signature_file
    spec = Dir.chdir(File.expand_path("..", SIG)) { Gem::Specification.load("uring_machine.gemspec") }
    signatures = Dir.glob("**/*.rbs", base: SIG).map { |file| "sig/#{file}" }
    assert_includes signatures, "sig/uring_machine.rbs"
    assert_empty signatures - spec.files, "signature files the gem would not ship"
  end

  # The check itself: a method missing from sig/ is found.
  def test_a_method_without_a_signature_is_reported_missing
    refute signature?(UringMachine::Machine, :instance, :no_such_method)
    refute signature?(UringMachine::Machine, :instance, :inspect) # only Object's
    refute signature?(Class.new, :instance, :anything) # no declaration at all
    assert signature?(UringMachine::Machine, :instance, :read)
    assert signature?(Fiber, :instance, :parent)
  end

  private

  def definitions
    definitions = self.class.definitions
    skip_with_reason("rbs does not load on Ruby #{RUBY_VERSION}: #{definitions.message}") if definitions.is_a?(LoadError)
    definitions
  end

  # A skip whose reason shows even without --verbose.
  def skip_with_reason(reason)
    warn "\nSKIP #{self.class}##{name}: #{reason}"
    skip reason
  end

  # UringMachine and every class and module under it (public constants only).
  def gem_modules(mod = UringMachine, found = [])
    found << mod
    mod.constants(false).each do |name|
      next if mod.autoload?(name)

      value = mod.const_get(name, false)
      next unless value.is_a?(Module) && value.name == "#{mod.name}::#{name}" # not an alias of another

      gem_modules(value, found)
    end
    found
  end

  def assert_all_signed(methods)
    missing = methods.uniq.reject { |mod, kind, name| signature?(mod, kind, name) }
    assert_empty missing.map { |mod, kind, name| "#{mod}#{kind == :singleton ? '.' : '#'}#{name}" },
                 "methods without a signature in sig/"
  end

  # Whether sig/ (or core, or LIBRARIES) gives +mod+'s method +name+ a signature of its own.
  def signature?(mod, kind, name)
    builder = definitions # skips without rbs
    return false unless mod.name

    type_name = RBS::Namespace.parse("::#{mod.name}").to_type_name
    return false unless builder.env.class_decls.key?(type_name)

    definition = kind == :singleton ? builder.build_singleton(type_name) : builder.build_instance(type_name)
    method = definition.methods[name]
    return false if method.nil?

    # (Kernel's own methods are declared in Kernel: not inherited for Kernel itself)
    defined_in = method.defined_in.to_s
    defined_in == "::#{mod.name}" || !INHERITED.include?(defined_in)
  end
end
