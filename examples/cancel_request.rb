# frozen_string_literal: true

# An HTTP request with a deadline: cancel_after cancels the read the request waits on.
#
#   ruby -Ilib examples/cancel_request.rb [SECONDS]
#
# A small HTTP server in the same program answers /fast at once and /slow after 10 s. The
# client asks for both, each within SECONDS (default 0.5), with plain Net::HTTP. Stopping the
# server fiber stops its connection fibers too (they were spun from it).
require "uring_machine"
require "net/http"
require "socket"

deadline = Float(ARGV.fetch(0, "0.5"))

Fiber.set_scheduler(UringMachine::Scheduler.new)
server = TCPServer.new("127.0.0.1", 0)
port = server.local_address.ip_port

server_fiber = UringMachine.spin do
  loop do
    connection = server.accept
    UringMachine.spin do
      request_line = connection.gets
      nil until connection.gets == "\r\n" # the headers
      sleep 10 if request_line.include?("/slow")
      connection.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    ensure
      connection.close
    end
  end
end

# The program's main code runs in the thread's root fiber, which Ruby never schedules (its
# I/O would block the thread): the client runs in a fiber of its own.
client = UringMachine.spin do
  %w[/fast /slow].each do |path|
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    outcome = begin
      UringMachine.cancel_after(deadline) { "answered #{Net::HTTP.get(URI("http://127.0.0.1:#{port}#{path}")).inspect}" }
    rescue UringMachine::Cancel
      "cancelled"
    end
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    puts format("%-5s %s (%s s deadline, %s)", path, outcome, deadline, took < deadline + 0.5 ? "in time" : "late")
  end
end
client.join
server_fiber.stop
server.close
