# frozen_string_literal: true

# Fiber::Scheduler workload: 10 fibers (threads, tasks) x 50 writes of 1 KiB to one shared File,
# each write inside one shared Mutex#synchronize; the file's size is checked at the end.
# Baseline: the same 500 writes, under the same Mutex, from one thread. One op = one write.
require "fileutils"
require "tmpdir"
require "uring_machine"
require_relative "harness"

module SchedMutexFileBench
  WORKERS = 10
  WRITES = Bench.scaled(50)
  CHUNK = ("m" * 1024).freeze
  OPS = WORKERS * WRITES

  Fixture = Struct.new(:dir, :path, :file, :mutex)

  module_function

  def setup
    dir = Dir.mktmpdir("um-bench")
    path = File.join(dir, "shared.out")
    Fixture.new(dir, path, File.open(path, "wb"), Mutex.new)
  end

  def teardown(fixture)
    fixture.file.close unless fixture.file.closed?
    FileUtils.remove_entry(fixture.dir)
  end

  def writer(fixture)
    WRITES.times { fixture.mutex.synchronize { fixture.file.write(CHUNK) } }
  end

  def tasks(fixture)
    Array.new(WORKERS) { -> { writer(fixture) } }
  end

  def blocking(fixture)
    WORKERS.times { writer(fixture) }
  end

  # Wraps a mode: its writes, then the file closed and its size checked (inside the timing).
  def checked(body)
    lambda do |fixture|
      value = body.call(fixture)
      fixture.file.close
      size = File.size(fixture.path)
      raise "file has #{size} bytes, expected #{OPS * CHUNK.bytesize}" unless size == OPS * CHUNK.bytesize

      value
    end
  end

  def run
    puts "sched_mutex_file: #{WORKERS} workers x #{WRITES} mutex-guarded writes of #{CHUNK.bytesize} B " \
         "to one file (#{OPS} ops), best of #{Bench::RUNS}, ruby #{RUBY_VERSION}"
    modes = Bench.concurrent_modes(method(:tasks), blocking: method(:blocking)).transform_values { |m| checked(m) }
    results = Bench.run(modes, setup: method(:setup), teardown: method(:teardown))
    Bench.report(results, baseline: "blocking", ops: OPS)
    Bench.report_metrics(results["scheduler"].value, ops: OPS)
  end
end

SchedMutexFileBench.run if $PROGRAM_NAME == __FILE__
