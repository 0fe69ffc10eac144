# frozen_string_literal: true

# Packaging checks.
#
#   rake gem:build   build pkg/uring_machine-VERSION.gem from the git-tracked files
#   rake test:gem    build the gem, `gem install --local` it into a temporary GEM_HOME (RubyGems'
#                    own Cargo builder compiles the extension), then `require "uring_machine"`
#                    from another directory with only that GEM_HOME; everything is removed after.
#
# UM_KEEP_GEM_HOME=1 keeps the temporary GEM_HOME (its path is printed) for inspection.

require "rbconfig"
require "tmpdir"
require "shellwords"

module UringMachineGem
  ROOT = File.expand_path("..", __dir__)

  module_function

  def spec
    @spec ||= Dir.chdir(ROOT) { Gem::Specification.load("uring_machine.gemspec") } or
      abort "uring_machine.gemspec does not load"
  end

  def gem_command(*args)
    # `ruby -S gem`: the RubyGems of the Ruby running rake (on Debian /usr/bin/gem is another Ruby's
    # after update-alternatives, and in the matrix chroots ruby != /usr/bin/ruby's target)
    [RbConfig.ruby, "-S", "gem", *args]
  end

  # Files the gemspec patterns would match but git does not track: not in the gem.
  def untracked_files
    out = IO.popen(%w[git ls-files --others --exclude-standard -z], chdir: ROOT, err: File::NULL, &:read)
    patterns = %w[lib/**/*.rb sig/**/*.rbs ext/**/*.rs ext/**/*.toml Cargo.toml Cargo.lock README.md]
    out.split("\0").select { |f| patterns.any? { |p| File.fnmatch?(p, f, File::FNM_PATHNAME) } }
  rescue SystemCallError
    []
  end

  def build(dir)
    untracked = untracked_files
    unless untracked.empty?
      warn "warning: not git-tracked, so NOT in the gem: #{untracked.join(' ')}"
    end
    path = File.join(dir, spec.file_name)
    Dir.chdir(ROOT) { sh_quiet(*gem_command("build", "uring_machine.gemspec", "--output", path)) }
    path
  end

  def sh_quiet(*cmd, **opts)
    env = cmd.first.is_a?(Hash) ? cmd.first : {}
    puts [*env.map { |k, v| "#{k}=#{Shellwords.escape(v)}" if v }.compact, cmd.grep(String).shelljoin].join(" ")
    system(*cmd, **opts) or abort "command failed (#{$?.exitstatus}): #{cmd.shelljoin}"
  end
end

namespace :gem do
  desc "Build pkg/uring_machine-VERSION.gem (git-tracked files only)"
  task :build do
    mkdir_p "pkg"
    path = UringMachineGem.build(File.expand_path("pkg", UringMachineGem::ROOT))
    puts "built #{path}"
  end
end

namespace :test do
  desc "Build the gem, install it into a temporary GEM_HOME (RubyGems' Cargo builder) and require it"
  task :gem do
    g = UringMachineGem
    tmp = Dir.mktmpdir("uring_machine-gem-")
    begin
      gem_file = g.build(tmp)
      gem_home = File.join(tmp, "gem_home")
      # Only the temporary GEM_HOME: nothing from the system gem dirs, the repo or the user's env.
      env = { "GEM_HOME" => gem_home, "GEM_PATH" => gem_home, "GEM_SPEC_CACHE" => File.join(tmp, "specs"),
              "RUBYLIB" => nil, "RUBYOPT" => nil, "BUNDLE_GEMFILE" => nil }
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      g.sh_quiet(env, *g.gem_command("install", "--local", "--no-document", "--no-user-install",
                                     "--install-dir", gem_home, gem_file))
      puts format("gem install took %.1fs", Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)

      installed = Dir.glob("#{gem_home}/{gems,extensions}/**/uring_machine.so").map { |f| f.delete_prefix("#{gem_home}/") }
      puts "extension installed as: #{installed.join(', ')}"

      elsewhere = File.join(tmp, "elsewhere")
      mkdir_p elsewhere
      check = <<~RUBY
        require "uring_machine"
        p UringMachine::VERSION
        loaded = $LOADED_FEATURES.grep(/uring_machine/)
        outside = loaded.reject { |f| f.start_with?(ENV["GEM_HOME"] + "/") }
        abort "loaded from outside GEM_HOME: \#{outside.inspect}" unless outside.empty?
        abort "the extension was not loaded: \#{loaded.inspect}" if loaded.grep(/\\.so\\z/).empty?
        puts "loaded: \#{loaded.map { |f| f.delete_prefix(ENV["GEM_HOME"] + "/") }.join(", ")}"
        sig = File.join(Gem.loaded_specs.fetch("uring_machine").full_gem_path, "sig", "uring_machine.rbs")
        abort "the signatures are not in the gem: no \#{sig}" unless File.file?(sig)
      RUBY
      out = IO.popen(env, [RbConfig.ruby, "-e", check], chdir: elsewhere, err: %i[child out], &:read)
      puts out
      abort "test:gem: require \"uring_machine\" failed from #{elsewhere}" unless $?.success?
      unless out.lines.first&.strip == g.spec.version.to_s.inspect
        abort "test:gem: expected #{g.spec.version.to_s.inspect}, got #{out.lines.first.inspect}"
      end
      puts "test:gem: ok (uring_machine #{g.spec.version} installs and loads on Ruby #{RUBY_VERSION})"
    ensure
      if ENV["UM_KEEP_GEM_HOME"] == "1"
        puts "kept #{tmp}"
      else
        rm_rf tmp, verbose: false
      end
    end
  end
end
