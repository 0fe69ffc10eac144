# frozen_string_literal: true

require_relative "scheduler_helper"

# Many TCP connections open at once in one process: an accepting fiber, an echo fiber per
# accepted connection and a client fiber per connection, all under one scheduler. Every client
# connects, waits until all are connected, then sends a line and expects it back.
# UM_STRESS=1: 8,000 connections (16,000 descriptors).
class TestStressEcho < SchedulerTest
  CONNECTIONS = ENV["UM_STRESS"] ? 8_000 : 1_000

  def test_many_concurrent_echo_connections
    ensure_fd_limit(2 * CONNECTIONS + 256)
    got = with_scheduler(limit: 60) do
      server = TCPServer.new("127.0.0.1", 0)
      server.listen(CONNECTIONS)
      port = server.local_address.ip_port
      schedule_fiber do
        CONNECTIONS.times do
          connection = server.accept
          Fiber.schedule do
            while (line = connection.gets)
              connection.write(line)
            end
          ensure
            connection.close
          end
        end
      ensure
        server.close
      end

      gate = Thread::Queue.new # closed once every client is connected
      connected = 0
      answers = {}
      CONNECTIONS.times do |i|
        schedule_fiber do
          socket = TCPSocket.new("127.0.0.1", port)
          connected += 1
          gate.close if connected == CONNECTIONS
          gate.pop
          socket.write("line #{i}\n")
          answers[i] = socket.gets
        ensure
          socket&.close
        end
      end
      Fiber.set_scheduler(nil)
      { connected: connected, answers: answers }
    end
    assert_equal CONNECTIONS, got[:connected]
    assert_equal CONNECTIONS, got[:answers].size
    got[:answers].each { |i, answer| assert_equal "line #{i}\n", answer }
  end
end
