# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"
require "timeout"

# The programs in examples/ run as documented (`ruby -Ilib examples/NAME.rb`) and do what
# they say.
class TestExamples < Minitest::Test
  ROOT = File.expand_path("..", __dir__)

  def ruby_command(name, *args)
    [RbConfig.ruby, "-w", "-I", File.join(ROOT, "lib"), File.join(ROOT, "examples", "#{name}.rb"), *args.map(&:to_s)]
  end

  def run_example(name, *args)
    out, err, status = Timeout.timeout(60) { Open3.capture3(*ruby_command(name, *args)) }
    assert status.success?, "#{name} failed: #{err}"
    assert_empty err, "#{name} printed warnings or errors"
    out
  end

  def test_worker_pool
    out = run_example("worker_pool", 30, 3)
    assert_match(/\A30 jobs done by 3 workers \(worker 0: \d+, worker 1: \d+, worker 2: \d+\)$/, out)
    assert_equal 30, out.scan(/worker \d: (\d+)/).flatten.sum(&:to_i)
    assert_includes out, "sum of squares: #{(0...30).sum { |n| n * n }}"
  end

  def test_crawler
    out = run_example("crawler", 200, 10)
    assert_equal "fetched 200 pages, at most 10 at a time, in order: true\n", out
  end

  def test_cancel_request
    out = run_example("cancel_request", 0.3)
    assert_equal [%(/fast answered "ok" (0.3 s deadline, in time)), "/slow cancelled (0.3 s deadline, in time)"],
                 out.lines.map(&:strip)
  end

  def test_echo_server_spreads_connections_over_threads_and_stops_on_term
    Open3.popen3(*ruby_command("echo_server", 0, 2)) do |stdin, stdout, stderr, waiter|
      stdin.close
      banner = Timeout.timeout(30) { stdout.gets }
      port = banner[/port (\d+)/, 1]&.to_i or flunk("no banner: #{banner.inspect} #{stderr.read}")
      clients = Array.new(6) { TCPSocket.new("127.0.0.1", port) }
      clients.each_with_index { |c, i| c.write("hello #{i}") }
      echoed = clients.each_with_index.map { |c, i| Timeout.timeout(30) { c.read("hello #{i}".bytesize) } }
      assert_equal Array.new(6) { |i| "hello #{i}" }, echoed
      clients.each(&:close)
      Process.kill(:TERM, waiter.pid)
      status = Timeout.timeout(30) { waiter.value }
      assert status.success?, "exits cleanly on TERM: #{stderr.read}"
      assert_equal "stopped by SignalException\n", stdout.read
      assert_empty stderr.read
    end
  end

  def test_chat_server_survives_a_reset_client_and_stops_on_a_signal
    %i[TERM INT].each do |signal|
      Open3.popen3(*ruby_command("chat_server", 0)) do |stdin, stdout, stderr, waiter|
        stdin.close
        banner = Timeout.timeout(30) { stdout.gets }
        port = banner[/port (\d+)/, 1]&.to_i or flunk("no banner: #{banner.inspect} #{stderr.read}")
        alice, bob = %w[alice bob].map { |name| chat_client(port, name) }
        reset_client(port, "mallory")
        assert_match(/\Amallory failed: Connection reset by peer\b/, Timeout.timeout(30) { stdout.gets })
        alice.write("hello bob\n")
        assert_equal "alice: hello bob\n", Timeout.timeout(30) { bob.gets }
        bob.write("hi\n")
        assert_equal "bob: hi\n", Timeout.timeout(30) { alice.gets }
        Process.kill(signal, waiter.pid)
        status = Timeout.timeout(30) { waiter.value }
        assert status.success?, "exits cleanly on #{signal}: #{stderr.read}"
        assert_equal "stopped by #{signal == :INT ? "Interrupt" : "SignalException"}\n", stdout.read
        assert_nil Timeout.timeout(30) { alice.gets }, "the server closed the connection on its way out"
        assert_empty stderr.read
        [alice, bob].each(&:close)
      ensure
        Process.kill(:KILL, waiter.pid) if waiter.alive? # a failed assertion must not hang here
      end
    end
  end

  private

  # A client that joined the chat (the server welcomed it).
  def chat_client(port, name)
    client = TCPSocket.new("127.0.0.1", port)
    client.write("#{name}\n")
    assert_equal "welcome #{name}\n", Timeout.timeout(30) { client.gets }
    client
  end

  # A client that joins, then resets its connection (SO_LINGER 0: close sends RST).
  def reset_client(port, name)
    client = chat_client(port, name)
    client.setsockopt(Socket::SOL_SOCKET, Socket::SO_LINGER, [1, 0].pack("ii"))
    client.close
  end
end
