# frozen_string_literal: true

module Fuzz
  # Pops the numbers another thread pushes to a Queue (each push unblocks this fiber from that
  # thread) until :done: every number must arrive once, in order, interrupts or not.
  class Courier
    def initialize(queue, report, timeouts)
      @queue = queue
      @report = report
      @timeouts = timeouts
    end

    def run
      due = 0
      while (token = pop) != :done
        if token != due
          kind = token > due ? :missing : :duplicated
          @report.defect(kind, "queue from another thread: #{token} arrived where #{due} was due")
        end
        due = token + 1 if token >= due
        @report.count(:queue_tokens)
      end
    end

    private

    def pop
      @timeouts.around { @queue.pop }
    rescue Fuzz::Interrupt, Fuzz::Timeout => e
      @timeouts.check(e, "courier")
      retry
    end
  end
end
