# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/child_ruby"

# The first burst of name lookups in a fresh process: 50 fibers resolve "localhost" at once
# (Addrinfo.getaddrinfo, TCPSocket.new, Net::HTTP) with the gem's files evicted from the page
# cache. Nothing the scheduler needs may be loaded from inside a fiber: a require there reads
# its files through the scheduler, and the fibers that run meanwhile see a half-loaded
# UringMachine::DNS (NameError). That no file of lib/ is loaded once the scheduler is set is
# what makes this deterministic; the burst shows what it costs when it happens.
class TestSchedulerFirstLookups < Minitest::Test
  include ChildRuby::Assertions

  SCRIPT = <<~'RUBY'
    require "uring_machine"
    require "net/http"
    require "json"

    lib = File.realpath(ARGV.fetch(0))
    # Evict the gem's files (and resolv, which UringMachine::DNS requires) from the page cache:
    # a load then waits on the disk, through the scheduler when it happens in a fiber.
    resolv = $LOAD_PATH.map { |dir| File.join(dir, "resolv.rb") }.select { |f| File.file?(f) }
    (Dir[File.join(lib, "**", "*.rb")] + resolv).each { |f| File.open(f) { |io| io.advise(:dontneed) } }

    server = TCPServer.new("127.0.0.1", 0)
    port = server.local_address.ip_port
    Fiber.set_scheduler(UringMachine::Scheduler.new)
    loaded_before = $LOADED_FEATURES.dup

    Fiber.schedule do
      loop do
        client = server.accept
        Fiber.schedule do
          nil until client.gets == "\r\n"
          client.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
          client.close
        end
      end
    rescue IOError
      nil # closed once the clients are done
    end

    outcomes = []
    50.times do |i|
      Fiber.schedule do
        outcomes << case i % 3
                    when 0 then Addrinfo.getaddrinfo("localhost", port, nil, :STREAM).map(&:ip_address).sort.uniq.join(",")
                    when 1 then TCPSocket.open("localhost", port) { |s| s.write("GET / HTTP/1.0\r\n\r\n"); s.read[-2..] }
                    else Net::HTTP.get(URI("http://localhost:#{port}/"))
                    end
      rescue Exception => e # rubocop:disable Lint/RescueException -- reported to the test
        outcomes << "#{e.class}: #{e.message}"
      ensure
        server.close if outcomes.size == 50
      end
    end
    Fiber.set_scheduler(nil)

    in_fibers = ($LOADED_FEATURES - loaded_before).select { |f| f.start_with?(lib) }
    puts JSON.dump("outcomes" => outcomes.tally, "loaded_in_fibers" => in_fibers)
  RUBY

  def test_fifty_lookups_at_once_in_a_fresh_process_with_the_files_evicted
    report, = child_report("-w", "-e", SCRIPT, ChildRuby::LIB, limit: 60)
    assert_equal [], report["loaded_in_fibers"], "files of lib/ were loaded inside fibers"
    outcomes = report["outcomes"]
    refute outcomes.keys.any? { |o| o.include?("Error") }, "lookups failed: #{outcomes.inspect}"
    assert_equal 50, outcomes.values.sum
    assert_equal 17 + 16, outcomes.fetch("ok", 0), outcomes.inspect
  end
end
