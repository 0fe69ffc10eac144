# frozen_string_literal: true

require "zlib"

# The fuzz campaign of `rake test:fuzz`: campaign.rb runs it, worker.rb runs the episodes of
# one part in a child process (episodes.rb loads them). Everything is seeded: an episode's
# choices come from Fuzz.rng(seed, part, index), so a failure replays with the same seed and
# episode number (the interleaving of fibers and threads is the machine's, not ours).
module Fuzz
  # The parts of the campaign: name => [the class of its episodes, its share of the time].
  PARTS = {
    "machine_streams" => ["MachineStreams", 0.26],
    "scheduler_streams" => ["SchedulerStreams", 0.26],
    "sleeps" => ["Sleeps", 0.14],
    "accepts" => ["AcceptLoops", 0.14],
    "forks" => ["Forks", 0.1],
    "durations" => ["Durations", 0.1]
  }.freeze

  # Raised into worker fibers by the chaos (Machine#schedule, Fiber#raise, other threads).
  class Interrupt < StandardError; end

  # Raised by the timeouts the workers put around their operations.
  class Timeout < StandardError; end

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # The episode's random source: a function of the campaign seed, the part and the episode.
  def rng(seed, part, index)
    Random.new((((seed << 32) | Zlib.crc32(part.to_s)) << 32) | index)
  end

  # Queue#pop(timeout:) came with Ruby 3.2.
  def queue_pop_timeout?
    RUBY_VERSION >= "3.2"
  end

  # This process's open descriptors as "fd target" (those of /proc, such as the listing's own,
  # left out).
  def descriptors
    Dir.children("/proc/self/fd").filter_map do |fd|
      target = File.readlink("/proc/self/fd/#{fd}")
      "#{fd} #{target}" unless target.start_with?("/proc/")
    rescue Errno::ENOENT
      nil # it closed meanwhile
    end.sort
  end

  def compaction?
    return @compaction if defined?(@compaction)

    @compaction = GC.respond_to?(:compact) && (GC.compact || true)
  rescue NotImplementedError
    @compaction = false
  end
end

require_relative "defects"
