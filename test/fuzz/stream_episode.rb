# frozen_string_literal: true

module Fuzz
  # What the two stream parts share: 1-5 channels over random transports, one writer and one
  # reader fiber per channel, and the verdict on every channel once its fibers are done.
  class StreamEpisode
    def initialize(rng, report, _index = nil)
      @rng = rng
      @report = report
    end

    def run
      @channels = Array.new(@rng.rand(1..5)) { |i| Channel.new(i, Channel::TRANSPORTS.sample(random: @rng), @rng) }
      @format = RecordFormat.new(@rng)
      @deadline = Fuzz.now + @rng.rand(0.1..0.4)
      @checks = @channels.map { |c| StreamCheck.new(@format, c, @report) }
      @readers = []
      run_fibers
      verdict
    ensure
      @channels&.each(&:close)
    end

    private

    # The writer and reader bodies of every channel, each as [label, proc].
    def worker_bodies(machine, port_class, timeouts)
      @channels.zip(@checks).flat_map do |channel, check|
        writer = StreamWriter.new(channel, port_class.new(machine, channel, Random.new(@rng.rand(2**32))),
                                  format: @format, rng: Random.new(@rng.rand(2**32)), report: @report,
                                  timeouts: timeouts, deadline: @deadline)
        reader = StreamReader.new(channel, port_class.new(machine, channel, Random.new(@rng.rand(2**32))),
                                  check: check, rng: Random.new(@rng.rand(2**32)), report: @report,
                                  timeouts: timeouts)
        @readers << reader
        [["#{channel.label} writer", -> { writer.run }], ["#{channel.label} reader", -> { reader.run }]]
      end
    end

    def verdict
      @channels.zip(@checks, @readers).each do |channel, check, reader|
        check.finish(eof: reader.eof, confirmed: channel.confirmed, in_doubt: channel.in_doubt)
      end
    end
  end
end
