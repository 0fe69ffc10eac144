# frozen_string_literal: true

# UringMachine::Debugger::Commands: the prompt's commands, parsed.

module UringMachine
  module Debugger
    # What the user types at the prompt, as [name, argument].
    module Commands
      ALIASES = {
        "s" => :step, "step" => :step, "n" => :next, "next" => :next, "f" => :finish,
        "finish" => :finish, "c" => :continue, "cont" => :continue, "continue" => :continue,
        "w" => :where, "bt" => :where, "where" => :where, "fibers" => :fibers, "ls" => :fibers,
        "switch" => :switch, "sw" => :switch, "eval" => :eval, "e" => :eval, "p" => :eval,
        "help" => :help, "h" => :help, "?" => :help
      }.freeze

      HELP = <<~TEXT
        step (s)        run to the next line, entering calls
        next (n)        run to the next line of this fiber in this frame, or until it returns
        finish (f)      run until the current frame returns
        continue (c)    run on (Ctrl-D too)
        where (bt)      the call stack of the stopped fiber
        fibers (ls)     the fiber tree, the run queue and what each fiber waits on
        switch N        trace fiber N of the list instead: stop at its next line
        eval EXPR (p)   evaluate EXPR in the stopped frame; any other input is evaluated too
        help            this text
      TEXT

      # nil (end of input: Ctrl-D) continues; an empty line repeats nothing and asks again.
      def self.parse(line)
        return [:continue, nil] if line.nil?

        text = line.strip
        return [:nothing, nil] if text.empty?

        word, rest = text.split(/\s+/, 2)
        name = ALIASES[word]
        return [:eval, text] unless name
        return [:eval, text] if name == :eval && rest.nil? && word != "eval" # a variable named e / p

        [name, rest]
      end
    end
  end
end
