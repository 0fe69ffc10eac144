# frozen_string_literal: true

require_relative "integration_helper"
require_relative "support/tls_certificate"

# OpenSSL clients (and a server) in fibers: TLS handshakes that wait on the network overlap.
class TestIntegrationOpenSSL < IntegrationTest
  CLIENTS = 20
  DELAY = 0.1 # the threaded server waits this long before each handshake

  # A TLS echo server in threads (no scheduler): one line back per connection, each handshake
  # DELAY seconds late. Returns the port; the block runs with it.
  def with_threaded_server
    listener = TCPServer.new("127.0.0.1", 0)
    context = TLSCertificate.server_context
    connections = []
    acceptor = Thread.new do
      loop do
        socket = listener.accept
        connections << Thread.new(socket) do |tcp|
          sleep DELAY
          ssl = OpenSSL::SSL::SSLSocket.new(tcp, context)
          ssl.sync_close = true
          ssl.accept
          ssl.write(ssl.gets)
          ssl.close
        rescue IOError, SystemCallError, OpenSSL::SSL::SSLError
          tcp.close
        end
      end
    rescue IOError, SystemCallError
      nil
    end
    acceptor.report_on_exception = false
    yield listener.local_address.ip_port
  ensure
    listener&.close
    acceptor&.join(5)
    connections&.each { |thread| thread.join(5) }
  end

  def tls_echo(port, line)
    ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port), TLSCertificate.client_context)
    ssl.sync_close = true
    ssl.hostname = "localhost"
    ssl.connect
    ssl.write("#{line}\n")
    ssl.gets&.chomp
  ensure
    ssl&.close
  end

  def test_client_handshakes_overlap
    with_threaded_server do |port|
      (lines, took), ticks = with_scheduler do
        run_with_ticker do
          lines = nil
          took = elapsed { lines = in_fibers(CLIENTS) { |i| tls_echo(port, "line #{i}") } }
          [lines, took]
        end
      end
      assert_equal CLIENTS.times.map { |i| "line #{i}" }, lines
      assert_operator took, :<, 1.5, "#{CLIENTS} handshakes of #{DELAY}s each took #{took.round(2)}s: no overlap"
      assert_operator ticks, :>=, 3, "the ticker fiber did not run meanwhile"
    end
  end

  def test_server_and_clients_in_fibers_of_one_scheduler
    lines, ticks = with_scheduler do
      listener = TCPServer.new("127.0.0.1", 0)
      port = listener.local_address.ip_port
      context = TLSCertificate.server_context
      schedule_fiber do
        CLIENTS.times do
          tcp = listener.accept
          Fiber.schedule do
            ssl = OpenSSL::SSL::SSLSocket.new(tcp, context)
            ssl.sync_close = true
            ssl.accept
            ssl.write(ssl.gets.upcase)
          ensure
            (ssl || tcp).close
          end
        end
      ensure
        listener.close
      end
      run_with_ticker { in_fibers(CLIENTS) { |i| tls_echo(port, "line #{i}") } }
    end
    assert_equal CLIENTS.times.map { |i| "LINE #{i}" }, lines
    assert_operator ticks, :>=, 1, "the ticker fiber did not run meanwhile"
  end

  def test_a_failed_verification_fails_only_its_fiber
    with_threaded_server do |port|
      results, = with_scheduler do
        run_with_ticker do
          in_fibers(2) do |i|
            next tls_echo(port, "good") if i.zero?

            untrusting = OpenSSL::SSL::SSLContext.new
            untrusting.verify_mode = OpenSSL::SSL::VERIFY_PEER
            untrusting.cert_store = OpenSSL::X509::Store.new # trusts nobody
            ssl = OpenSSL::SSL::SSLSocket.new(TCPSocket.new("127.0.0.1", port), untrusting)
            ssl.sync_close = true
            begin
              ssl.connect
              :connected
            rescue OpenSSL::SSL::SSLError => e
              e.message
            ensure
              ssl.close
            end
          end
        end
      end
      assert_equal "good", results[0]
      assert_match(/certificate verify failed/, results[1])
    end
  end
end
