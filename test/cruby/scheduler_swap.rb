# frozen_string_literal: true

require "ripper"

module CRubyFiberSuite
  # CRuby's test/fiber/scheduler.rb defines a reference `Scheduler` (IO.select based) and helper
  # subclasses of it (IOBufferScheduler, BrokenUnblockScheduler, ...; they differ per Ruby
  # version). SchedulerSwap.generate(path, lib) returns the text of a replacement scheduler.rb:
  # `Scheduler` becomes a plain subclass of UringMachine::Scheduler, and the helper subclasses
  # are copied from the original, so that they now override our hooks (calling `super` into them).
  # Nothing else of the reference scheduler is kept.
  module SchedulerSwap
    # Ripper events reduced to what is needed: for each class, its name, its superclass name
    # (plain constants only) and its first and last lines.
    class ClassFinder < Ripper
      ClassDef = Struct.new(:name, :superclass, :first_line, :last_line)

      attr_reader :classes

      def initialize(source, path)
        super
        @classes = []
      end

      def on_const(token)
        [token, lineno]
      end

      def on_const_ref(const)
        const
      end

      def on_var_ref(ref)
        ref
      end

      # called when the parser reduces `class ... end`: lineno is the line of that `end`
      def on_class(cref, superclass, _body)
        if cref.is_a?(Array) && cref.first.is_a?(String)
          name, first_line = cref
          parent = superclass.first if superclass.is_a?(Array) && superclass.first.is_a?(String)
          @classes << ClassDef.new(name, parent, first_line, lineno)
        end
        nil
      end
    end

    module_function

    # The helper classes of +source+: top-level classes that inherit, directly or not, from Scheduler.
    def helper_classes(source, path)
      finder = ClassFinder.new(source, path)
      finder.parse
      raise "#{path}: Ripper could not parse it" if finder.error?

      top = finder.classes.reject do |c|
        finder.classes.any? { |o| !o.equal?(c) && o.first_line < c.first_line && c.last_line <= o.last_line }
      end
      family = ["Scheduler"]
      top.sort_by(&:first_line).select do |c|
        family << c.name if family.include?(c.superclass)
        family.include?(c.superclass)
      end
    end

    def generate(path, lib_dir)
      source = File.read(path)
      lines = source.lines
      helpers = helper_classes(source, path)
      out = []
      out << "# frozen_string_literal: true\n" if source.start_with?("# frozen_string_literal: true")
      out << <<~RUBY
        # Generated at test time by uring_machine's `rake test:cruby` from
        # #{path}:
        # its reference Scheduler is replaced with UringMachine::Scheduler; the helper subclasses
        # below are copied from it unchanged (the comment above each gives its lines there).

        require "fiber"
        require "socket"
        require "io/nonblock"
        require #{File.join(File.expand_path(lib_dir), 'uring_machine').inspect}

        class Scheduler < UringMachine::Scheduler
        end
      RUBY
      helpers.each do |c|
        body = lines[(c.first_line - 1)...c.last_line]
        unless body.first&.match?(/\A\s*class\s+#{c.name}\b/) && body.last&.match?(/\A\s*end\b/)
          raise "#{path}: class #{c.name} is not on lines #{c.first_line}-#{c.last_line} as Ripper said"
        end

        out << "\n# #{File.basename(path)}:#{c.first_line}-#{c.last_line}\n" << body.join
      end
      out.join
    end
  end
end
