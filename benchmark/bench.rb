# frozen_string_literal: true

# Runs the benchmark workloads, each in its own Ruby process: every benchmark/*.rb except
# this runner and the harness, or only those named as arguments (`bench.rb pipe`).
# Each workload file runs itself when it is the program (`ruby -Ilib benchmark/pipe.rb`).
require "rbconfig"

dir = __dir__
names = ARGV.empty? ? Dir[File.join(dir, "*.rb")].map { |f| File.basename(f, ".rb") } - %w[bench harness] : ARGV
lib = File.expand_path("../lib", dir)

names.sort.each_with_index do |name, i|
  file = File.join(dir, "#{name}.rb")
  abort "no workload #{file}" unless File.file?(file)
  puts if i.positive?
  system(RbConfig.ruby, *("-w" if $VERBOSE), "-I", lib, file, exception: true)
end
