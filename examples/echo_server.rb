# frozen_string_literal: true

# A supervised TCP echo server whose connections are spread over worker threads.
#
#   ruby -Ilib examples/echo_server.rb [PORT] [THREADS]     (PORT 0: any free port)
#
# The main thread accepts (under UringMachine::Scheduler, so TCPServer#accept waits in the
# ring); each connection becomes a fiber on one of the worker threads, in turn, through
# spin(on_thread:). The acceptor is supervised: if it fails, it is restarted. Ctrl-C or
# `kill -TERM` stops it all, ensure blocks included.
require "uring_machine"
require "socket"

port = Integer(ARGV.fetch(0, "1234"))
thread_count = Integer(ARGV.fetch(1, "2"))

def echo(connection)
  while (data = connection.readpartial(16_384))
    connection.write(data)
  end
rescue EOFError, Errno::ECONNRESET, Errno::EPIPE
  nil # the client went away
ensure
  connection.close
end

Fiber.set_scheduler(UringMachine::Scheduler.new)
workers = Array.new(thread_count) { |i| UringMachine.worker_thread(name: "echo #{i}") }
server = TCPServer.new("127.0.0.1", port)
puts "echo server on port #{server.local_address.ip_port}, #{thread_count} worker threads"
$stdout.flush

acceptor = UringMachine.spin do
  workers.cycle do |thread|
    connection = server.accept
    UringMachine.spin(on_thread: thread) { echo(connection) }
  end
end

begin
  UringMachine.supervise(acceptor, restart: :on_error) do |event, _fiber, error|
    warn "acceptor failed (#{error.message}), restarting" if event == :error
  end
rescue Interrupt, SignalException => e
  puts "stopped by #{e.class}"
ensure
  server.close
end
