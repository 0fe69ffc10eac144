# frozen_string_literal: true

# A pool of worker fibers fed through mailboxes with a limit.
#
#   ruby -Ilib examples/worker_pool.rb [JOBS] [WORKERS]
#
# Each worker takes jobs from its own mailbox, which holds at most 2: the producer, handing
# jobs out in turn, waits whenever the next worker is busy and full. Results come back to the
# main fiber's mailbox.
require "uring_machine"

job_count = Integer(ARGV.fetch(0, "20"))
worker_count = Integer(ARGV.fetch(1, "3"))

Fiber.set_scheduler(UringMachine::Scheduler.new)
results = Fiber.current

workers = Array.new(worker_count) do |id|
  UringMachine.spin do
    Fiber.current.mailbox_limit = 2
    loop do
      job = UringMachine.receive
      break if job == :done

      sleep 0.001 * (id + 1) # some work; the slower workers get fuller mailboxes
      results << [id, job, job * job]
    end
  end
end

UringMachine.spin do
  job_count.times { |n| workers[n % worker_count] << n } # waits while that mailbox is full
  workers.each { |worker| worker << :done }
end

answers = Array.new(job_count) { UringMachine.receive }
per_worker = answers.group_by(&:first).transform_values(&:size).sort.to_h
puts "#{job_count} jobs done by #{worker_count} workers (#{per_worker.map { |id, n| "worker #{id}: #{n}" }.join(", ")})"
puts "sum of squares: #{answers.sum { |_, _, square| square }}"
