# frozen_string_literal: true

# The program test/test_gdb.rb inspects with gdb: fibers parked in a known state (a read on a
# pipe, a sleep, a mailbox receive, a join; on another thread, Machine#sleep), their addresses
# printed as JSON, then "ready"; then the body waits on stdin, and the thread in the ring, until
# the test kills the process. The reader is named as it is spun, the sleeper once it runs; the
# receiver's name is taken away again.
require "uring_machine"
require "json"

worker_fiber = Thread::Queue.new
worker = Thread.new do
  worker_fiber << Fiber.current
  UringMachine.machine.sleep(1000)
end
worker_fiber = worker_fiber.pop

UringMachine.run do
  reader_end, _writer_end = IO.pipe
  reader = UringMachine.spin(name: "pipe reader") { reader_end.read(1) }
  sleeper = UringMachine.spin { sleep 1000 }
  receiver = UringMachine.spin(name: "inbox") { UringMachine.receive }
  joiner = UringMachine.spin { reader.join }
  UringMachine.machine.snooze # the spun fibers run, in order, until each parks
  sleeper.name = "sleeper 2"
  receiver.name = nil
  # The worker's sleep is an op in flight once its machine lists a timer.
  sleep 0.01 until UringMachine.stats.find { |s| s[:thread] == worker }&.fetch(:timers) == 1
  address = ->(fiber) { fiber.inspect[/0x\h+/].to_i(16) }
  fibers = { reader: reader, sleeper: sleeper, receiver: receiver, joiner: joiner, body: Fiber.current,
             worker: worker_fiber }
  $stdout.puts JSON.generate(fibers.transform_values(&address).merge(pipe_fd: reader_end.fileno))
  $stdout.puts "ready"
  $stdout.flush
  $stdin.read
end
