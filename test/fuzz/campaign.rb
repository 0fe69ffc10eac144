# frozen_string_literal: true

# The fuzz campaign (`rake test:fuzz`): runs each part of test/fuzz in worker processes
# (worker.rb), one part after the other, for its share of the time; a worker that crashes or
# hangs costs only its episode: the next worker goes on from the episode after it.
#
#   UM_FUZZ_SEED          the seed (default: random, printed); a defect prints its replay command
#   UM_FUZZ_SECONDS       the time for the whole campaign (default 180), shared between the parts
#   UM_FUZZ_PARTS         parts to run, comma-separated (default: all): machine_streams,
#                         scheduler_streams, sleeps, accepts, forks, durations
#   UM_FUZZ_EPISODE       run just this episode of each part (a replay)
#   UM_FUZZ_HANG_SECONDS  an episode running longer than this is a hang (default 30)
#   UM_FUZZ_LIB           the gem's lib directory to fuzz (default: this repository's lib)
#
# Exits non-zero if any defect was found.
require "json"
require "rbconfig"
require "io/wait"
require_relative "fuzz"
require_relative "tally"

module Fuzz
  # Starts the workers, collects their episodes, prints the summary.
  class Campaign
    WORKER = File.expand_path("worker.rb", __dir__)
    LIB = File.expand_path(ENV.fetch("UM_FUZZ_LIB", File.expand_path("../../lib", __dir__)))
    CRASH = /\[BUG\]|panicked at|\(fatal\)|Assertion|double free|free\(\)|corrupted|Segmentation/

    def initialize(env)
      @seed = Integer(env.fetch("UM_FUZZ_SEED") { Random.new_seed % 1_000_000_000 })
      @seconds = Float(env.fetch("UM_FUZZ_SECONDS", "180"))
      @parts = env.fetch("UM_FUZZ_PARTS", PARTS.keys.join(",")).split(/[\s,]+/)
      unknown = @parts - PARTS.keys
      abort "UM_FUZZ_PARTS: unknown #{unknown.join(', ')} (parts: #{PARTS.keys.join(', ')})" unless unknown.empty?
      @episode = env["UM_FUZZ_EPISODE"]&.then { |e| Integer(e) }
      @hang = Float(env.fetch("UM_FUZZ_HANG_SECONDS", "30"))
      @tally = Tally.new(@seed)
    end

    def run
      started = Fuzz.now
      puts "fuzz: UM_FUZZ_SEED=#{@seed} UM_FUZZ_SECONDS=#{@seconds.round} parts: #{@parts.join(', ')} " \
           "(Ruby #{RUBY_VERSION}, #{LIB}, pid #{Process.pid})"
      puts "fuzz: Queue#pop(timeout:) needs Ruby 3.2: sleeps use Timeout.timeout around Queue#pop, durations skip it" unless Fuzz.queue_pop_timeout?
      puts "fuzz: GC.compact is not available here: the campaign runs without it" unless Fuzz.compaction?
      share = @parts.sum { |part| PARTS[part].last }
      @parts.each { |part| run_part(part, @seconds * PARTS[part].last / share) }
      @tally.summary(Fuzz.now - started)
      @tally.defects.values.sum.zero?
    end

    private

    def run_part(part, seconds)
      deadline = Fuzz.now + seconds
      first = @episode || 0
      loop do
        started = Fuzz.now
        first, finished = worker(part, first, [deadline - Fuzz.now, 0].max)
        @tally.seconds(part, Fuzz.now - started)
        break if finished || @episode || Fuzz.now >= deadline
      end
    end

    # Runs a worker from episode +first+; returns [the episode to go on from, whether it ended normally].
    def worker(part, first, seconds)
      out_r, out_w = IO.pipe
      err_r, err_w = IO.pipe
      args = [part, @seed, first, seconds, @episode ? "once" : nil].compact.map(&:to_s)
      pid = Process.spawn(RbConfig.ruby, "-w", "-I", LIB, WORKER, *args, out: out_w, err: err_w)
      [out_w, err_w].each(&:close)
      stderr = { crash: nil, tail: [] } # what says why, should the worker die
      echo = Thread.new do
        err_r.each_line do |line|
          warn "  [#{part}] #{line}"
          stderr[:crash] ||= line if line.match?(CRASH)
          stderr[:tail] = (stderr[:tail] << line).last(5)
        end
      end
      running, after = follow(part, out_r, pid)
      status = Process.wait2(pid).last
      echo.join
      died(part, running, status, stderr) if running
      [running ? running + 1 : after || first, status.success?] # exit status 4: recycled, go on
    ensure
      [out_r, err_r].each { |io| io&.close }
    end

    # Reads the worker's episode lines; returns [the episode it died in (nil if none), the next one].
    def follow(part, out, pid)
      running = nil
      after = nil
      loop do
        unless out.wait_readable(@hang + 30)
          Process.kill(:KILL, pid)
          @tally.defect(part, running, "hang", "the worker stopped answering (its watchdog did not fire either)")
          return [nil, (running || after || 0) + 1]
        end
        line = out.gets or return [running, after]
        result = JSON.parse(line)
        if result.key?("start")
          running = result["start"]
        else
          @tally.episode(part, result["done"], result)
          running = nil
          after = result["done"] + 1
        end
      end
    end

    # A worker that ended in the middle of an episode: a fatal, with the line that says why (a
    # [BUG] report, a panic, glibc's complaint), else its last lines.
    def died(part, index, status, stderr)
      why = stderr[:crash] || stderr[:tail].join
      @tally.episode(part, index, "defects" => [["fatal", "the worker died (#{status.inspect}): #{why.strip}"]])
    end
  end
end

exit(Fuzz::Campaign.new(ENV).run)
