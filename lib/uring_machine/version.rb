# frozen_string_literal: true

module UringMachine
  VERSION = "0.1.0"
end
