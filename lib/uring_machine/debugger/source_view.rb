# frozen_string_literal: true

# UringMachine::Debugger::SourceView: the source lines around a stop.

module UringMachine
  module Debugger
    # The source around a location: a few lines before and after, the current one marked.
    module SourceView
      CONTEXT = 3

      def self.render(path, line, context: CONTEXT)
        lines = read(path)
        return "  (no source for #{path})\n" unless lines

        first = [line - context, 1].max
        last = [line + context, lines.size].min
        width = last.to_s.size
        (first..last).map do |n|
          marker = n == line ? "=>" : "  "
          format("%s %*d| %s\n", marker, width, n, lines[n - 1].chomp)
        end.join
      end

      def self.read(path)
        File.readlines(path)
      rescue SystemCallError, IOError, TypeError
        nil
      end
      private_class_method :read
    end
  end
end
