# frozen_string_literal: true

# UringMachine::CoreExt, the installer of every change the gem makes to Ruby's own classes
# (each declared in core_ext/, by the class it changes), and UringMachine.patches.

module UringMachine
  # Everything the gem changes in Ruby's own classes, and when. Each change is declared by the
  # file of the class it changes (lib/uring_machine/core_ext/io.rb, fiber.rb, ...) and installed
  # here, at one of five moments:
  #
  # - :gem_load        `require "uring_machine"`
  # - :first_machine   the first Machine.new (a Scheduler makes one when it first runs): the
  #                    IO methods that cost a plain thread something wait until the gem is used
  # - :first_scheduler the first Scheduler.new
  # - :require_global  `require "uring_machine/global"` (opt-in)
  # - :require_sidekiq `require "uring_machine/sidekiq"` (opt-in; changes Sidekiq's classes,
  #                    declared in lib/uring_machine/sidekiq/)
  #
  # Changes made by the Rust extension as it loads are declared here too (mechanism :define,
  # :allocator, :event_hook), so that UringMachine.patches accounts for every one.
  module CoreExt
    MOMENTS = %i[gem_load first_machine first_scheduler require_global require_sidekiq].freeze

    # What a patch does to its class:
    # - :prepend    its module is prepended (to the singleton class when singleton: true)
    # - :alias      its methods replace the class's own, CRuby's kept under the private alias
    #               __cruby_<name> (a prepended module's super costs too much there)
    # - :define     the extension defines the method in the class itself
    # - :allocator  the extension wraps the class's allocator
    # - :event_hook the extension adds a Ruby event hook
    # - :warning    a one-time Ruby warning is spent with its category off
    MECHANISMS = %i[prepend alias define allocator event_hook warning].freeze

    # How long a patch's methods are in place once it is installed:
    # - :once_installed             for the rest of the process
    # - :while_a_scheduler_is_open  while at least one UringMachine::Scheduler of the process is
    #                               open (made and not yet closed); otherwise the class has
    #                               CRuby's methods again (a prepended module is left empty, an
    #                               aliased method is CRuby's). For the IO fast paths, which only
    #                               ever act under our scheduler: a thread without one pays
    #                               nothing for them once no scheduler is open.
    IN_PLACE = %i[once_installed while_a_scheduler_is_open].freeze

    ROOT = File.expand_path("../..", __dir__)

    # "3.1+", "3.1" (that series), "3.3-3.4" (both ends included) or "< 4.0".
    RUBY_VERSIONS = /\A(?:(?<low>\d+\.\d+)(?:(?<plus>\+)|-(?<high>\d+\.\d+))?|< (?<below>\d+\.\d+))\z/

    @declared = []
    @done = {}
    @installed = [].freeze
    # The methods of the :while_a_scheduler_is_open patches: [owner, name, ours, crubys]
    # (crubys nil for a prepended module's, which is removed), put in place or taken out by
    # SchedulersOpen.
    @switched = []

    class << self
      # Declares a change of +klass+: its entry in UringMachine.patches (see there) once
      # installed. A :prepend patch is installed by prepending +mod+; others by the block, if
      # any (the extension's changes need none: they are made when it loads).
      def declare(klass, mod, methods:, at:, why:, ruby: "3.1+", mechanism: :prepend, singleton: false,
                  in_place: :once_installed, name: mod&.name, switch: nil, source: nil, &install)
        raise ArgumentError, "unknown moment #{at.inspect}" unless MOMENTS.include?(at)
        raise ArgumentError, "unknown mechanism #{mechanism.inspect}" unless MECHANISMS.include?(mechanism)
        raise ArgumentError, "bad Ruby versions #{ruby.inspect}" unless RUBY_VERSIONS.match?(ruby)
        raise ArgumentError, "unknown in_place #{in_place.inspect}" unless IN_PLACE.include?(in_place)

        source ||= caller_locations(1, 1).first.path.delete_prefix("#{ROOT}/")
        entry = { class: klass, singleton: singleton, module: mod, name: name, methods: methods.freeze,
                  mechanism: mechanism, installed_when: at, in_place: in_place, ruby_versions: ruby,
                  switch: switch, source: source, why: why }.freeze
        @declared << [entry, install]
        entry
      end

      # Installs the patches declared for +moment+ that this Ruby takes; once per moment (later
      # calls return false). The moment is marked done first: a Machine made meanwhile by
      # another thread never installs a patch twice.
      def install(moment)
        raise ArgumentError, "unknown moment #{moment.inspect}" unless MOMENTS.include?(moment)
        return false if @done[moment]

        @done[moment] = true
        installed = @installed.dup
        @declared.each do |entry, action|
          next unless entry[:installed_when] == moment && ruby?(entry[:ruby_versions])

          apply(entry, action)
          installed << entry
        end
        @installed = installed.freeze
        true
      end

      # The patches installed so far, in the order they were installed (frozen).
      attr_reader :installed

      # Every patch declared, installed or not (this Ruby may not take it, or its moment has not
      # come), in the order they are declared.
      def declared
        @declared.map(&:first).freeze
      end

      # For an :alias patch: puts +name+ of +klass+ under the private alias __cruby_<name>,
      # which the replacement calls to take CRuby's method.
      def keep_cruby(klass, name)
        cruby = :"__cruby_#{name}"
        klass.alias_method(cruby, name)
        klass.__send__(:private, cruby)
        cruby
      end

      # Whether +version+ (this Ruby's by default) is among +versions+ (see RUBY_VERSIONS).
      # No Gem::Version: the gem may be loaded with --disable-gems.
      def ruby?(versions, version = RUBY_VERSION)
        match = RUBY_VERSIONS.match(versions) or raise ArgumentError, "bad Ruby versions #{versions.inspect}"
        mine = version.split(".").first(2).map(&:to_i)
        return compare(mine, match[:below]).negative? if match[:below]
        return compare(mine, match[:low]) >= 0 if match[:plus]

        compare(mine, match[:low]) >= 0 && compare(mine, match[:high] || match[:low]) <= 0
      end

      private

      def switch_all(ours_in_place)
        switch(@switched, ours_in_place)
      end

      # Puts the switched methods in place (ours), or takes them out (CRuby's again, or none in
      # the prepended module). The method there is removed first, so that no "method
      # redefined" warning is given; a method set from an UnboundMethod keeps its definition
      # (a C method stays one).
      def switch(methods, ours_in_place)
        methods.each do |owner, name, ours, crubys|
          owner.remove_method(name) if crubys || !ours_in_place
          owner.define_method(name, ours_in_place ? ours : crubys) if ours_in_place || crubys
        end
      end

      def compare(mine, version)
        mine <=> version.split(".").map(&:to_i)
      end

      def apply(entry, action)
        target = entry[:singleton] ? entry[:class].singleton_class : entry[:class]
        prepended = entry[:mechanism] == :prepend
        owner = prepended ? entry[:module] : target
        crubys = entry[:methods].map { |name| prepended ? nil : target.instance_method(name) }
        target.prepend(entry[:module]) if prepended
        action&.call
        return unless entry[:in_place] == :while_a_scheduler_is_open

        switched = entry[:methods].zip(crubys).map { |name, cruby| [owner, name, owner.instance_method(name), cruby] }
        @switched.concat(switched)
        switch(switched, false) unless SchedulersOpen.in_place?
      end
    end

    # Counts the open UringMachine::Schedulers of the process (Scheduler.new, Scheduler#close),
    # and keeps the :while_a_scheduler_is_open patches' methods in place exactly while there is
    # one. A Scheduler that is never closed keeps them in place.
    module SchedulersOpen
      @open = 0
      @in_place = false
      @lock = Thread::Mutex.new

      class << self
        attr_reader :open

        def opened
          count(+1)
        end

        def closed
          count(-1)
        end

        # Whether the :while_a_scheduler_is_open methods are in place now.
        def in_place?
          @in_place
        end

        private

        # Changes the count, and puts the methods in place or takes them out to match it, under
        # one lock: defining a method runs Ruby's method_added hook, during which another
        # thread may open or close a Scheduler.
        def count(change)
          @lock.synchronize do
            @open += change
            wanted = @open.positive?
            CoreExt.__send__(:switch_all, wanted) unless wanted == @in_place
            @in_place = wanted
          end
        end
      end
    end

    # Installs the :first_machine patches as the first Machine is made.
    module OnFirstMachine
      def new(...)
        CoreExt.install(:first_machine)
        super
      end
    end

    # Installs the :first_scheduler patches as the first Scheduler is made, and counts the
    # open ones (Scheduler#close counts them out).
    module OnFirstScheduler
      def new(...)
        SchedulersOpen.opened # first: the patches installed now stay in place
        begin
          CoreExt.install(:first_scheduler)
          scheduler = super
          scheduler.__send__(:__counted_open__)
          scheduler
        rescue Exception # rubocop:disable Lint/RescueException
          SchedulersOpen.closed
          raise
        end
      end
    end
  end

  # What the gem changed in Ruby's own classes so far: a frozen Array of frozen Hashes, one per
  # change, in the order they were installed:
  #
  #   class:          the class or module changed (IO, Fiber, ...)
  #   singleton:      true when its class methods are changed (IO.copy_stream, Fiber.yield)
  #   module:         the module whose methods run (nil where there is none); in the class's
  #                   ancestors for :prepend (for :alias, FastCalls does the work, not in them)
  #   name:           the module's name, or what the change is
  #   methods:        the methods it replaces or adds (Symbols)
  #   mechanism:      :prepend, :alias, :define, :allocator, :event_hook or :warning (CoreExt)
  #   installed_when: :gem_load, :first_machine, :first_scheduler, :require_global or
  #                   :require_sidekiq
  #   in_place:       :once_installed, or :while_a_scheduler_is_open (CoreExt::IN_PLACE)
  #   ruby_versions:  the Rubies that take it: "3.1+", "3.1", "3.3-3.4", "< 4.0"
  #   switch:         how to turn its behaviour off, or nil
  #   source:         the file that makes the change
  #   why:            one line
  def self.patches
    CoreExt.installed
  end
end

require_relative "core_ext/fiber"
require_relative "core_ext/io"
require_relative "core_ext/basic_socket"
require_relative "core_ext/addrinfo"
require_relative "core_ext/thread"
require_relative "core_ext/process"
require_relative "core_ext/io_buffer"
require_relative "core_ext/kernel"
require_relative "core_ext/signal"

UringMachine::Machine.singleton_class.prepend(UringMachine::CoreExt::OnFirstMachine)
UringMachine::Scheduler.singleton_class.prepend(UringMachine::CoreExt::OnFirstScheduler)
