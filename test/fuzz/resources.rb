# frozen_string_literal: true

module Fuzz
  # The worker's file descriptors and threads at rest: after every episode they must be back
  # to what they were (after GC.start, which closes what dropped IOs and rings still hold). A
  # leak is reported once, then becomes the new baseline. The timeout watchdog's thread is the
  # process's own, started by the first timeout and kept (as CRuby's Timeout keeps its thread):
  # not a leak.
  class Resources
    SETTLE_TRIES = 4
    PROCESS_THREADS = ["uring_machine timeout watchdog"].freeze

    def initialize
      snapshot
    end

    def check(report)
      settle
      extra_fds = descriptors.reject { |fd, _| @fds.key?(fd) || report.known_fds.include?(fd) }
      extra_threads = Thread.list - @threads - process_threads
      unless extra_fds.empty?
        report.defect(:fd_leak, "#{extra_fds.size} more fds: #{extra_fds.map { |fd, what| "#{fd} #{what}" }.join(', ')}")
      end
      report.defect(:thread_leak, "#{extra_threads.size} more threads: #{extra_threads.map(&:inspect).join(', ')}") unless extra_threads.empty?
      snapshot unless extra_fds.empty? && extra_threads.empty? && report.known_fds.empty?
    end

    private

    def snapshot
      @fds = descriptors
      @threads = Thread.list
    end

    def process_threads
      Thread.list.select { |t| PROCESS_THREADS.include?(t.name) }
    end

    # Threads that are ending and objects that hold fds get a few chances to go away.
    def settle
      SETTLE_TRIES.times do |try|
        (Thread.list - @threads - process_threads).each { |t| t.join(0.5) }
        return if Thread.list - process_threads == @threads - process_threads && descriptors.keys == @fds.keys

        GC.start
        sleep(0.01 * try)
      end
    end

    def descriptors
      Dir.children("/proc/self/fd").to_h do |fd|
        [fd.to_i, (File.readlink("/proc/self/fd/#{fd}") rescue "?")] # rubocop:disable Style/RescueModifier -- it just closed
      end.reject { |_, what| what == "?" }
    end
  end
end
