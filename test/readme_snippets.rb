# frozen_string_literal: true

require "ripper"

# The ```ruby blocks of README.md, each named by the `<!-- snippet: NAME -->` line just above
# it, and the child program that runs one: the test's prelude, the snippet (its lines with a
# documented result rewritten to check it) and the test's checks. See test_readme_snippets.rb.
module ReadmeSnippets
  README = File.expand_path("../README.md", __dir__)

  # One ```ruby block: its name (nil if the line above names none), the README line of its
  # first code line, and its code.
  Snippet = Struct.new(:name, :line, :code)

  # A line that documents its value (`expr # => "hello"`) or what it raises
  # (`expr # raises RuntimeError: boom`). Rewritten only when the code before the comment is a
  # statement of its own; a comment on the last line of a longer statement (`end.join # raises
  # ...`) is the outcome of the whole program and is checked by the test instead.
  VALUE = /\A(?<indent>\s*)(?<code>\S.*?)\s+# => (?<doc>.*)\z/
  RAISES = /\A(?<indent>\s*)(?<code>\S.*?)\s+# raises (?<class>[A-Z][\w:]*)(?:: (?<message>.*))?\z/

  module_function

  def all(path = README)
    snippets = []
    name = nil
    code = nil
    File.foreach(path).with_index(1) do |text, number|
      if code
        next code << text unless text.start_with?("```")

        snippets.last.code = code.join
        code = nil
      elsif text.start_with?("```ruby")
        snippets << Snippet.new(name, number + 1, nil)
        code = []
      end
      name = text[/\A<!-- snippet: ([\w-]+) -->\s*\z/, 1]
    end
    snippets
  end

  def statement?(code)
    !Ripper.sexp(code).nil?
  end

  # The Ruby literal a `# =>` comment starts with ("hello", :none, [:ok, 1], true), before a
  # `;` or a ` (` that explains it; nil when it is prose ("the main fiber") or elides ("...").
  def literal(doc)
    text = doc.split(";").first.split(" (").first.strip
    return nil if text.empty? || text.include?("...") || !statement?(text)

    tokens = Ripper.lex(text)
    plain = tokens.each_with_index.all? do |(_, type, token), i|
      case type
      when :on_ident then tokens[i - 1][1] == :on_symbeg && i.positive?
      when :on_kw then %w[true false nil].include?(token)
      else %i[on_tstring_beg on_tstring_content on_tstring_end on_symbeg on_int on_float on_lbracket
              on_rbracket on_comma on_sp].include?(type)
      end
    end
    plain ? text : nil
  end

  # The documented results of +snippet+: [{line:, doc:, literal:}] for its `# =>` lines, in order.
  def documented_values(snippet)
    rewrite(snippet).last
  end

  # [program lines, documented values]: the snippet with each documented value stored in
  # SNIPPET_VALUES[line] and each documented raise checked where it happens.
  def rewrite(snippet)
    values = []
    lines = snippet.code.lines.each_with_index.map do |text, i|
      line = snippet.line + i
      body = text.chomp
      if (m = RAISES.match(body)) && statement?(m[:code])
        "#{m[:indent]}begin; #{m[:code]}; rescue Exception => e; snippet_raised(#{line}, e, " \
          "#{m[:class].dump}, #{m[:message]&.dump || 'nil'}); else snippet_raised(#{line}, nil, " \
          "#{m[:class].dump}, nil); end\n"
      elsif (m = VALUE.match(body)) && statement?(m[:code])
        values << { line: line, doc: m[:doc], literal: literal(m[:doc]) }
        "#{m[:indent]}SNIPPET_VALUES[#{line}] = (#{m[:code]})\n"
      else
        "#{body}\n"
      end
    end
    [lines, values]
  end

  HEAD = <<~RUBY
    $stdout.sync = true # the test reads the lines as they come
    SNIPPET_VALUES = {}

    def snippet_raised(line, error, class_name, message)
      expected = Object.const_get(class_name)
      return if error.is_a?(expected) && (message.nil? || error.message == message)

      raise "README.md:\#{line}: raises \#{class_name}\#{message && ": \#{message}"}, but got " +
            (error ? "\#{error.class}: \#{error.message}" : "no exception")
    end

    def snippet_check(line, doc, expected)
      actual = SNIPPET_VALUES.fetch(line) { raise "README.md:\#{line}: the line never ran" }
      raise "README.md:\#{line}: # => \#{doc}, but got \#{actual.inspect}" unless expected === actual
    end
  RUBY

  # The child program for +snippet+: HEAD, +prelude+, the rewritten snippet, then a check of
  # each documented value (its literal, or the matcher +matchers+ gives for its index), then
  # +check+. +in_fiber+: the snippet runs in a fiber that UringMachine.spin starts, joined.
  def program(snippet, prelude: "", matchers: {}, check: "", in_fiber: false)
    lines, values = rewrite(snippet)
    checks = values.each_with_index.map do |value, i|
      "snippet_check(#{value[:line]}, #{value[:doc].dump}, #{value[:literal] || matchers.fetch(i)})\n"
    end
    lines = ["UringMachine.spin do\n", *lines, "end.join\n"] if in_fiber
    [HEAD, "# prelude\n", prelude, "\n# README.md:#{snippet.line}\n", *lines, "# checks\n", *checks, check].join
  end
end
