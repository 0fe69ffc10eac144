# frozen_string_literal: true

require_relative "dns_helper"

# UringMachine::DNS::Server's UDP workers: a block that waits holds up only its own query, and
# a server whose blocks do not wait keeps only a few fibers, however many queries it answers.
class TestDnsServerWorkers < DnsTest
  IN = Resolv::DNS::Resource::IN

  def setup
    super
    @client = udp_client
  end

  def teardown
    @gate&.each { |io| io.close unless io.closed? }
    super
  end

  def ask(port, name, id)
    query = Resolv::DNS::Message.new(id).tap { |m| m.add_question(Resolv::DNS::Name.create("#{name}."), IN::A) }
    @client.send(query.encode, 0, "127.0.0.1", port)
  end

  # The next reply (decoded), or nil if none comes within +limit+ seconds (a failure bound).
  def reply(limit = 10)
    @client.wait_readable(limit) && Resolv::DNS::Message.decode(@client.recv(512))
  end

  # A server whose blocks for slow*.example wait until a byte comes down the gate pipe.
  def gated_server
    @gate = IO.pipe
    gate = @gate.first
    dns_server do |t|
      UringMachine.machine.read(gate, +"", 1) if t.question.name.start_with?("slow")
      t.respond("192.0.2.1")
    end
  end

  def test_a_waiting_block_holds_up_only_its_own_query
    server = gated_server
    5.times { |i| ask(server.port, "slow#{i}.example", i) }
    ask(server.port, "fast.example", 99)
    fast = reply
    refute_nil fast, "the fast query was answered while five blocks waited"
    assert_equal 99, fast.id
    assert_equal ["192.0.2.1"], fast.answer.map { |_, _, record| record.address.to_s }

    @gate.last.write("x" * 5)
    slow = Array.new(5) { reply }
    assert_equal 5, slow.compact.size, "every waiting block answered once let go"
    assert_equal [0, 1, 2, 3, 4], slow.map(&:id).sort
    assert_equal 6, server.server.stats[:queries]
  end

  def test_blocks_that_do_not_wait_keep_the_workers_few
    server = gated_server
    3.times { |i| ask(server.port, "slow#{i}.example", i) } # three workers wait...
    ask(server.port, "fast.example", 50)
    assert_equal 50, reply&.id
    @gate.last.write("xxx") # ...and are let go: the extra ones leave
    assert_equal [0, 1, 2], Array.new(3) { reply&.id }.sort
    200.times do |i|
      ask(server.port, "n#{i}.example", 100 + i)
      assert_equal 100 + i, reply&.id
    end
    fibers = UringMachine.stats.find { |machine| machine[:thread].equal?(server.thread) }[:fibers]
    # the thread's fiber that waits for stop, the TCP accept loop, and the UDP workers
    assert_operator fibers, :<=, 2 + UringMachine::DNS::Server::SPARE_WORKERS + 1
    assert_equal 204, server.server.stats[:queries]
  end

  def test_listening_again_after_stop
    answers = []
    with_scheduler do |scheduler|
      server = UringMachine::DNS::Server.new { |t| t.respond("192.0.2.1") }
      schedule_fiber do
        2.times do
          server.listen(port: 0, tcp: false)
          3.times do |i|
            ask(server.port, "n#{i}.example", i)
            answers << Resolv::DNS::Message.decode(@client.recv(512)).id
          end
          server.stop
        end
      end
      scheduler.run
    end
    assert_equal [0, 1, 2, 0, 1, 2], answers
  end

  # Fiber.schedule runs a new worker at once: it must not take a datagram of a burst and spin
  # yet another before the worker that spun it has answered.
  def test_a_burst_under_the_scheduler_spins_no_chain_of_workers
    peak = 0
    ids = nil
    with_scheduler do |scheduler|
      server = UringMachine::DNS::Server.new do |t|
        peak = [peak, scheduler.machine.metrics[:fibers]].max
        t.respond("192.0.2.1")
      end.listen(port: 0, tcp: false)
      schedule_fiber do
        200.times { |i| ask(server.port, "n#{i}.example", i) } # all queued before the server runs
        ids = Array.new(200) { Resolv::DNS::Message.decode(@client.recv(512)).id }
        server.stop
      end
      scheduler.run
    end
    assert_equal (0...200).to_a, ids.sort
    # this test's fiber and the UDP workers
    assert_operator peak, :<=, 1 + UringMachine::DNS::Server::SPARE_WORKERS + 1
  end
end
