# frozen_string_literal: true

module Fuzz
  # Part "forks": 1-4 threads, each with a scheduler whose fibers have ops in flight (a read on
  # a pipe nobody has written to yet, sleeps), fork from other fibers at random moments, most
  # of them at once (fork + Process.wait). Each child reports the descriptors it has beyond the
  # parent's baseline (it must have closed the parent's rings, eventfds and pidfds), makes a
  # ring of its own work, and must exit 0. Once the threads have ended, with their Thread
  # objects still referenced (as in most programs) and after GC, the parent must be back to its
  # baseline too (issue 18, item 8); the worker checks again once they are gone.
  class Forks
    def initialize(rng, report, _index = nil)
      @rng = rng
      @report = report
    end

    def run
      @children_r, @children_w = IO.pipe
      pipes = Array.new(@rng.rand(1..4)) { IO.pipe }
      @baseline = Fuzz.descriptors
      threads = pipes.map do |pipe|
        rng = Random.new(@rng.rand(2**32))
        Thread.new { @report.guard("forking thread") { forking_thread(pipe, rng) } }
      end
      threads.each(&:join)
      check_parent(threads)
      check_children
    ensure
      [@children_r, @children_w, *pipes&.flatten].each { |io| io&.close unless io&.closed? }
    end

    private

    def forking_thread((r, w), rng)
      Fiber.set_scheduler(UringMachine::Scheduler.new)
      Fiber.schedule { r.read(1) } # in flight until the forks are done
      Fiber.schedule { rng.rand(1..4).times { sleep(rng.rand * 0.01) } }
      together = rng.rand(2).zero? # all at once, or spread out
      forkers = Array.new(rng.rand(1..20)) { Fiber.schedule { fork_and_wait(together ? 0 : rng.rand * 0.01) } }
      Fiber.schedule do
        sleep(0.001) while forkers.any?(&:alive?)
        w.write("!")
      end
      Fiber.set_scheduler(nil)
    end

    def fork_and_wait(delay)
      sleep(delay) if delay.positive?
      pid = fork do
        GC.start
        @children_w.syswrite("#{(Fuzz.descriptors - @baseline).join(', ')}\n")
        UringMachine.machine.sleep(0.001) # a ring of its own works
      end
      _, status = Process.wait2(pid)
      @report.count(:forks)
      @report.defect(:fatal, "a forked child ended with #{status.inspect}") unless status.success?
    end

    # The threads have ended; +threads+ keeps their Thread objects referenced meanwhile.
    def check_parent(threads)
      GC.start
      extra = Fuzz.descriptors - @baseline
      return if extra.empty?

      @report.defect(:fd_leak, "#{extra.size} fds open after #{threads.size} forking threads ended " \
                               "(their Thread objects kept, GC run): #{extra.join(', ')}")
      @report.known_fds.concat(extra.map(&:to_i))
    end

    # One defect for the episode's children that kept descriptors of the parent's.
    def check_children
      @children_w.close
      kept = @children_r.each_line.map(&:chomp).reject(&:empty?)
      return if kept.empty?

      @report.defect(:fd_leak, "#{kept.size} forked children kept fds of the parent's, such as #{kept.max_by(&:size)}")
    end
  end
end
