# frozen_string_literal: true

# UringMachine::VERSION (the gemspec reads it).

module UringMachine
  VERSION = "0.1.0"
end
