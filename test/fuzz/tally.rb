# frozen_string_literal: true

module Fuzz
  # The campaign's totals: episodes, seconds and counts per part, defects per kind; prints
  # each defect as it arrives (the first few of each kind and part in full) with the command
  # that replays its episode.
  class Tally
    SHOWN_PER_KIND = 5

    attr_reader :defects

    def initialize(seed)
      @seed = seed
      @parts = Hash.new { |h, part| h[part] = { episodes: 0, seconds: 0.0, counts: Hash.new(0) } }
      @defects = Hash.new(0)
      @shown = Hash.new(0)
    end

    def episode(part, index, result)
      @parts[part][:episodes] += 1
      result.fetch("counts", {}).each { |key, n| @parts[part][:counts][key] += n }
      result.fetch("defects", []).each { |kind, detail| defect(part, index, kind, detail) }
    end

    def seconds(part, seconds)
      @parts[part][:seconds] += seconds
    end

    def defect(part, index, kind, detail)
      @defects[kind] += 1
      shown = (@shown[[part, kind]] += 1)
      if shown <= SHOWN_PER_KIND
        puts "DEFECT #{kind} (#{part}, episode #{index}): #{detail}"
        puts "  replay: UM_FUZZ_SEED=#{@seed} UM_FUZZ_PARTS=#{part} UM_FUZZ_EPISODE=#{index} rake test:fuzz"
      elsif shown == SHOWN_PER_KIND + 1
        puts "(more #{kind} defects in #{part} are only counted)"
      end
      $stdout.flush
    end

    def summary(elapsed)
      puts "", format("fuzz summary: seed %d, %.0f s, Ruby %s", @seed, elapsed, RUBY_VERSION)
      @parts.each do |part, p|
        counts = p[:counts].sort.map { |k, n| "#{k} #{n}" }.join(", ")
        puts format("  %-18s %5d episodes in %5.1f s  %s", part, p[:episodes], p[:seconds], counts)
      end
      written = total("records_written")
      puts format("  records: %d written, %d read (%.0f written/s over the whole run)",
                  written, total("records_read"), written / [elapsed, 1e-9].max)
      puts "  defects: #{Report::KINDS.map { |k| "#{k} #{@defects[k]}" }.join(', ')}"
    end

    private

    def total(key)
      @parts.values.sum { |p| p[:counts][key] }
    end
  end
end
