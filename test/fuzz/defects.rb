# frozen_string_literal: true

module Fuzz
  # What one episode found: its defects (kind and detail) and its counts (records written and
  # read, sleeps checked, ...). Worker fibers and threads add to it; the worker sends it to the
  # campaign as one JSON line.
  class Report
    KINDS = %w[corrupt missing duplicated truncated short_write stray_timeout early_sleep hang fatal
               error fd_leak thread_leak].freeze

    attr_reader :defects, :counts, :tracked, :known_fds

    def initialize
      @tracked = []
      @known_fds = [] # fds the episode reported as leaked already
      @defects = []
      @counts = Hash.new(0)
      @lock = Mutex.new # helper threads report too
    end

    def defect(kind, detail)
      raise ArgumentError, "unknown defect kind #{kind}" unless KINDS.include?(kind.to_s)

      @lock.synchronize { @defects << [kind.to_s, detail.to_s] }
    end

    def count(key, amount = 1)
      @lock.synchronize { @counts[key.to_s] += amount }
    end

    # An exception that should not have left a worker: a defect of the machine, or of this
    # campaign (either way someone must look at it).
    def error(where, exception)
      trace = exception.backtrace&.first(6)&.join(" <- ")
      defect(:error, "#{where}: #{exception.class}: #{exception.message} (#{trace})")
    end

    # Remembers a fiber of the episode: a hang report shows where each one is.
    def track(label, fiber)
      @lock.synchronize { @tracked << [label, fiber] }
      fiber
    end

    # Runs a worker's body: whatever escapes it is reported, not raised into the episode.
    def guard(where)
      yield
    rescue Exception => e # rubocop:disable Lint/RescueException -- reported as a defect
      error(where, e)
    end

    def to_h
      { "defects" => @defects, "counts" => @counts }
    end
  end
end
