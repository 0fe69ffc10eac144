# frozen_string_literal: true

require_relative "lib/uring_machine/version"

Gem::Specification.new do |spec|
  spec.name = "uring_machine"
  spec.version = UringMachine::VERSION
  spec.authors = ["uring_machine authors"]
  spec.summary = "io_uring-backed fiber machine and Fiber::Scheduler for Ruby"
  spec.description = "A Rust (magnus/rb-sys) engine that drives Linux io_uring and plugs into Ruby as a " \
                     "Fiber::Scheduler, plus a thin Ruby layer for structured concurrency."
  spec.license = "MIT"
  spec.platform = Gem::Platform::RUBY
  spec.required_ruby_version = ">= 3.1"
  spec.requirements = ["Linux with io_uring", "a Rust toolchain (cargo) and libclang to build the extension"]

  # Git-tracked files only. The root Cargo.toml (the workspace, with the release profile) and
  # Cargo.lock must ship: RubyGems' Cargo builder runs `cargo rustc --locked` in
  # ext/uring_machine/, and cargo finds the workspace root (and its lock file) above it.
  patterns = %w[lib/**/*.rb lib/**/*.py sig/**/*.rbs ext/**/*.rs ext/**/*.toml Cargo.toml Cargo.lock README.md]
  tracked = begin
    IO.popen(%w[git ls-files -z], chdir: __dir__, err: File::NULL, &:read).split("\0")
  rescue SystemCallError
    []
  end
  tracked = Dir.glob(patterns, base: __dir__) if tracked.empty? # not a git checkout
  spec.files = tracked.select do |f|
    patterns.any? { |p| File.fnmatch?(p, f, File::FNM_PATHNAME | File::FNM_EXTGLOB) } &&
      File.file?(File.join(__dir__, f))
  end.sort
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/uring_machine/Cargo.toml"]
end
