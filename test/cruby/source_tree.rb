# frozen_string_literal: true

# A CRuby source tree: its version, and whether its tests test this Ruby.
module CRubySourceTree
  module_function

  # "X.Y.Z" of a CRuby source tree.
  def version(src)
    api = File.read(File.join(src, "include", "ruby", "version.h"))
    teeny = File.read(File.join(src, "version.h"))[/^#\s*define\s+RUBY_VERSION_TEENY\s+(\d+)/, 1]
    major = api[/^#\s*define\s+RUBY_API_VERSION_MAJOR\s+(\d+)/, 1]
    minor = api[/^#\s*define\s+RUBY_API_VERSION_MINOR\s+(\d+)/, 1]
    [major, minor, teeny].join(".")
  rescue SystemCallError => e
    abort "#{src} does not look like a CRuby source tree: #{e.message}"
  end

  # The tests of another Ruby series test another interface: refuse.
  def check_version(src)
    found = version(src)
    series = ->(v) { v.split(".").first(2) }
    return if series.(found) == series.(RUBY_VERSION)

    abort "the source tree #{src} is CRuby #{found}, but this is Ruby #{RUBY_VERSION}: its tests " \
          "would not test this Ruby"
  end
end
