# frozen_string_literal: true

# A chat server: every line a client sends goes to every other client.
#
#   ruby -Ilib examples/chat_server.rb [PORT]     (PORT 0: any free port)
#
# A client's first line is its name. One fiber accepts; each connection is an isolated fiber
# (spin(isolated: true)), named after its client: one that fails (a connection reset) is an
# :error event of the supervisor, and the other clients and the acceptor go on. The room is a
# fiber fed through its mailbox; each client has a writer fiber fed through its own, so a slow
# client delays nobody else. The acceptor is supervised (restarted if it fails); Ctrl-C or
# `kill -TERM` stops everything, ensure blocks included.
require "uring_machine"
require "socket"

port = Integer(ARGV.fetch(0, "1234"))

# The room: who is in, and what they say to the others.
def run_room
  members = {} # writer fiber => client name
  loop do
    kind, writer, text = UringMachine.receive
    case kind
    when :join then members[writer] = text
    when :leave then members.delete(writer)
    when :say then members.each_key { |member| deliver(member, text, members) unless member.equal?(writer) }
    end
  end
end

def deliver(writer, line, members)
  writer << line
rescue FiberError # that client's writer has finished: it is leaving
  members.delete(writer)
end

# One client: its name, then its lines to the room until it hangs up.
def serve(connection, room)
  name = connection.gets&.chomp or return
  Fiber.current.name = name
  writer = UringMachine.spin(name: "#{name} (writer)") do
    loop { connection.write(UringMachine.receive) }
  end
  room << [:join, writer, name]
  writer << "welcome #{name}\n"
  while (line = connection.gets)
    room << [:say, writer, "#{name}: #{line}"]
  end
ensure
  room << [:leave, writer] if writer && room.alive?
  connection.close
end

Fiber.set_scheduler(UringMachine::Scheduler.new)
server = TCPServer.new("127.0.0.1", port)
puts "chat server on port #{server.local_address.ip_port}"
$stdout.flush

room = UringMachine.spin(name: "room") { run_room }
acceptor = UringMachine.spin(name: "acceptor") do
  1.step do |n|
    connection = server.accept
    UringMachine.spin(isolated: true, name: "client #{n}") { serve(connection, room) }
  end
end

begin
  UringMachine.supervise(acceptor, restart: :on_error) do |event, fiber, error|
    next unless event == :error

    puts "#{fiber.name} failed: #{error.message}"
    $stdout.flush
  end
rescue Interrupt, SignalException => e
  puts "stopped by #{e.class}"
ensure
  room.stop
  server.close
end
