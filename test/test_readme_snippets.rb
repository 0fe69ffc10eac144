# frozen_string_literal: true

require_relative "readme_snippets"
require_relative "integration_helper"
require_relative "support/dnsmasq_server"
require "open3"
require "rbconfig"
require "tmpdir"

# The zone the README's DNS snippet asks about, served by a throwaway dnsmasq (no network here).
class ReadmeDnsmasq < DnsmasqServer
  RECORDS = [
    "--host-record=example.com,93.184.215.14,2606:2800:21f:cb07:6820:80da:af6b:cbb2",
    "--mx-host=example.com,mail.example.com,10",
    "--ptr-record=1.2.0.192.in-addr.arpa,example.com",
    "--host-record=www.example,192.0.2.80"
  ].freeze

  def self.start
    new(*RECORDS, local: ["#"]).tap(&:start)
  end
end

# Every ```ruby block of README.md runs, in a child `ruby -w` from a temporary directory, and
# does what the README says: it exits as documented with nothing on stderr, and each result a
# comment documents (`# => "hello"`, `# raises RuntimeError: boom`, "timed out") is checked. A
# block is named by `<!-- snippet: NAME -->` on the line above it; SNIPPETS says what each one
# needs (a prelude for the names a fragment takes from its surroundings) and what it does. A
# block without a name or without an entry here fails, so a new snippet gets tested.
class TestReadmeSnippets < Minitest::Test
  include IntegrationTestHelper

  LIB = File.expand_path("../lib", __dir__)
  TIME_LIMIT = 20 # seconds per snippet; they take well under one
  REQUIRE = %(require "uring_machine"\n)
  SCHEDULER = %(#{REQUIRE}Fiber.set_scheduler(UringMachine::Scheduler.new)\n)

  # Per snippet name:
  #   prelude:  Ruby run before the snippet (the names a fragment uses), or a lambda of the test
#             that returns it
  #   matchers: { index => Ruby source of an object whose === checks the index-th `# =>` value }
  #             for the `# =>` comments that are prose, not a literal
  #   check:    Ruby run after the snippet, raising if something is not as documented
  #   stdout:   expected output (=== : a String, a Regexp or a Proc)
  #   exit:     expected exit status (0), or signal: the signal that ends it
  #   stderr:   expected stderr (=== ; default empty); "warning:" never passes
  #   replace:  { text in the snippet => method giving what the test puts there }
  #   in_fiber: run the snippet in a fiber (UringMachine.spin), as the README's text says it is
  #   interrupt_after: a line of output after which the test sends SIGINT (Ctrl-C)
  SNIPPETS = {
    "quick-start-scheduler" => {
      stdout: ->(out) { out.lines.sort == Array.new(10) { |i| "HELLO #{i}\n" } } # the clients' order varies
    },
    "quick-start-machine" => { stdout: %("hello"\ntimed out\n) },
    "busy-timeout" => { stdout: "execution expired\n" },
    "scheduled-fiber-error" => { prelude: REQUIRE, exit: 1, stderr: /^.*: boom \(RuntimeError\)$/ },
    "stats" => {},
    "process-handle" => {
      prelude: REQUIRE,
      matchers: { 2 => "->(status) { status.termsig == 15 && $?.equal?(status) }" },
      check: "raise 'still open' unless child.closed?\n"
    },
    "after-fork" => {
      prelude: REQUIRE,
      # the per-scheduler way: a child forked under a MyScheduler gets one of its own
      check: <<~RUBY
        raise "hook not removed" if UringMachine.remove_after_fork(hook)
        Thread.new do
          Fiber.set_scheduler(MyScheduler.new)
          pid = fork { exit!(Fiber.scheduler.instance_of?(MyScheduler) ? 0 : 3) }
          Process.wait(pid)
          raise "the child's scheduler: \#{$?.inspect}" unless $?.success?
        end.join
      RUBY
    },
    "partial-write" => {
      # a pipe nobody reads: the write fills it and the timeout stops it
      prelude: %(#{REQUIRE}machine = UringMachine.machine\nr, fd = IO.pipe\nrecord = "x" * 200_000\n),
      check: <<~RUBY
        raise "sent: \#{sent.inspect}" unless sent.is_a?(Integer) && sent.positive? && sent < record.bytesize
        fd.close
        raise "the peer got something else" unless r.read == record.byteslice(0, sent)
      RUBY
    },
    "fiber-tree" => {
      matchers: { 0 => "Fiber.current", 1 => "->(children) { children.size == 1 && !children[0].equal?(worker) }" },
      check: "raise 'the grandchild still runs' if SNIPPET_VALUES.values[1][0].alive?\n"
    },
    "deadlines" => {
      # a socket whose peer never writes: each deadline passes; in a fiber, as the README says
      prelude: %(#{SCHEDULER}socket, _peer = UNIXSocket.pair\n), in_fiber: true
    },
    "mailboxes" => { prelude: REQUIRE, stdout: "hello\nworld\n" },
    "run" => {},
    "groups" => {},
    "semaphore" => {
      # the 1,000 URLs point at a small HTTP server started here, stopped after the snippet
      prelude: <<~RUBY,
        #{SCHEDULER}require "net/http"
        server = TCPServer.new("127.0.0.1", 0)
        acceptor = UringMachine.spin do
          loop do
            UringMachine.spin(server.accept) do |client|
              nil until client.gets == "\\r\\n"
              client.write("HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok")
            ensure
              client.close
            end
          end
        end
        urls = Array.new(1000) { |i| "http://127.0.0.1:\#{server.local_address.ip_port}/\#{i}" }
      RUBY
      check: "raise 'not every page' unless pages.uniq == ['ok']\nacceptor.stop\n"
    },
    "resource-pool" => {},
    "timers" => { stdout: /\A\.\.\.!*\z/ },
    "global-run" => { stdout: "later\n" },
    "supervise" => {
      # stand-ins that end, so that supervise returns: the server fails once and ends when
      # restarted, the poller ends
      prelude: <<~RUBY,
        #{SCHEDULER}
        $serves = 0
        def serve_forever
          sleep 0.01
          raise "listener lost" if ($serves += 1) == 1
        end

        def poll_forever = sleep(0.01)
      RUBY
      check: "raise 'not restarted' unless $serves == 2\n",
      stderr: lambda { |err|
        events = err.lines.map { |l| l[/\A(\w+) #<Fiber:/, 1] }
        events.map(&:to_s).sort == %w[error restart start start stop stop] && err.match?(/^error #<Fiber:.* listener lost$/)
      }
    },
    "isolated-fibers" => {
      # the supervisor's events and the client's answer interleave as the fibers run
      stdout: ->(out) { out.lines.sort == ["acceptor: start \n", "acceptor: stop \n", "client: error Errno::ECONNRESET\n", "hello\n"] }
    },
    "fiber-names" => {
      stdout: lambda do |out|
        out.match?(/\A#<Fiber:0x\h+ "inbox" \S+:\d+ \(suspended\)>\n#<Fiber:0x\h+ \(root\)>  running\n/) &&
          out.match?(/^  "inbox" \S+:\d+  receiving \(mailbox empty\), \d+\.\d s old\n/) &&
          out.match?(/^  "sleeper" \S+:\d+  sleeping, \d+\.\d\d s left, \d+\.\d s old\n/)
      end
    },
    "mistakes-raise" => { prelude: SCHEDULER },
    "spin-on-thread" => { prelude: REQUIRE },
    "deadlock" => {
      stdout: lambda do |out|
        out.match?(/\Adeadlock: every fiber of #<Thread:\S+ run> waits for something nothing can bring any more/) &&
          out.match?(/^#<Fiber:0x\h+ \(root\)>  joining "inbox" \S+:\d+\n  "inbox" \S+:\d+  receiving \(mailbox empty\)/)
      end
    },
    "worker-threads" => {
      prelude: SCHEDULER,
      matchers: { 0 => 'File.read("/etc/hostname")' },
      check: "raise 'worker 2 still runs' unless workers[2].join(5)\n"
    },
    "dns-lookup" => {
      # the test's dnsmasq stands in for the servers of /etc/resolv.conf and for 127.0.0.1:5300
      prelude: lambda { |test|
        %(#{REQUIRE}UringMachine::DNS.default_resolver = UringMachine::DNS::Resolver.new(
          nameservers: [#{test.dnsmasq_address.dump}], search: [], resolv_conf: false, hosts: false)\n)
      },
      replace: { "127.0.0.1:5300" => :dnsmasq_address },
      # the PTR and www.example lines raise NXDomain unless dnsmasq knows their names
      matchers: {
        0 => '->(v) { v.map { |r| r.address.to_s } == ["93.184.215.14"] && v[0].ttl.positive? }',
        # AAAA too when an interface has a global IPv6 address
        1 => '->(v) { v == ["93.184.215.14"] || v.sort == ["2606:2800:21f:cb07:6820:80da:af6b:cbb2", "93.184.215.14"] }'
      }
    },
    "rack-server" => {
      stdout: %r{\Auring_machine: listening on http://127\.0\.0\.1:\d+ \(pid \d+\)\nuring_machine: stopping \(pid \d+\): 0 requests in flight\n\z}
    },
    "dns-server" => { prelude: REQUIRE, replace: { "5300" => :free_port } },
    "signals" => { stdout: "waiting; press Ctrl-C\nreader stopped\n", interrupt_after: "waiting; press Ctrl-C\n",
                   signal: "INT", stderr: /\A\S+:in .*: Interrupt$/ }
  }.freeze

  def dnsmasq_address
    server(ReadmeDnsmasq).address
  end

  def free_port
    LocalServer.free_port.to_s
  end

  def test_every_snippet_is_named_and_known
    snippets = ReadmeSnippets.all
    assert_operator snippets.size, :>=, SNIPPETS.size
    unnamed = snippets.reject(&:name).map { |s| "README.md:#{s.line - 1}" }
    assert_empty unnamed, "```ruby blocks without <!-- snippet: NAME --> on the line above"
    names = snippets.map(&:name)
    assert_empty names.select { |n| names.count(n) > 1 }.uniq, "names used twice"
    assert_empty names - SNIPPETS.keys, "snippets this test does not know: add them to SNIPPETS"
    assert_empty SNIPPETS.keys - names, "SNIPPETS entries the README no longer has"
  end

  def test_every_documented_value_is_checked
    ReadmeSnippets.all.each do |snippet|
      spec = SNIPPETS.fetch(snippet.name, {})
      ReadmeSnippets.documented_values(snippet).each_with_index do |value, i|
        matcher = spec.fetch(:matchers, {})[i]
        assert value[:literal] || matcher, "README.md:#{value[:line]} (# => #{value[:doc]}): no matcher for this prose"
        refute value[:literal] && matcher, "README.md:#{value[:line]}: the literal in the README is the check"
      end
    end
  end

  SNIPPETS.each_key do |name|
    define_method("test_snippet_#{name.tr('-', '_')}") { run_snippet(name) }
  end

  private

  def run_snippet(name)
    snippet = ReadmeSnippets.all.find { |s| s.name == name } or flunk("README.md has no snippet #{name}")
    spec = SNIPPETS.fetch(name)
    snippet = substituted(snippet, spec.fetch(:replace, {}))
    prelude = spec.fetch(:prelude, "")
    prelude = prelude.call(self) if prelude.respond_to?(:call)
    program = ReadmeSnippets.program(snippet, prelude: prelude, matchers: spec.fetch(:matchers, {}),
                                              check: spec.fetch(:check, ""), in_fiber: spec[:in_fiber])
    out, err, status = Dir.mktmpdir("readme-#{name}") do |dir|
      File.write(File.join(dir, "snippet.rb"), program)
      run_child(dir, spec[:interrupt_after])
    end
    listing = program.lines.each_with_index.map { |l, i| format("%3d  %s", i + 1, l) }.join
    context = "snippet #{name} (README.md:#{snippet.line}), run as:\n#{listing}\nstdout:\n#{out}\nstderr:\n#{err}"
    assert_outcome(spec, status, context)
    refute_match(/warning:/, err, context)
    assert spec.fetch(:stderr, "") === err, "stderr not as expected: #{context}" # rubocop:disable Style/CaseEquality
    assert spec[:stdout] === out, "stdout not as expected: #{context}" if spec.key?(:stdout) # rubocop:disable Style/CaseEquality
  end

  def substituted(snippet, replacements)
    code = replacements.reduce(snippet.code) do |text, (from, method)|
      assert_includes text, from, "snippet #{snippet.name}: the README no longer says #{from}"
      text.gsub(from, send(method))
    end
    ReadmeSnippets::Snippet.new(snippet.name, snippet.line, code)
  end

  def assert_outcome(spec, status, context)
    refute_nil status, "no outcome within #{TIME_LIMIT} s: #{context}"
    if spec[:signal]
      assert_equal Signal.list.fetch(spec[:signal]), status.termsig, "ends by SIG#{spec[:signal]}: #{context}"
    else
      assert_equal spec.fetch(:exit, 0), status.exitstatus, "exit status: #{context}"
    end
  end

  # Runs snippet.rb in +dir+; with +ready+, sends SIGINT once stdout has that line. Returns
  # stdout, stderr and the status (nil if it outlived TIME_LIMIT and was killed).
  def run_child(dir, ready)
    Open3.popen3(RbConfig.ruby, "-w", "-I", LIB, "snippet.rb", chdir: dir) do |stdin, stdout, stderr, waiter|
      stdin.close
      errors = Thread.new { stderr.read }
      out = +""
      if ready
        line = Thread.new { stdout.gets }.join(TIME_LIMIT)&.value
        out << line.to_s
        Process.kill(:INT, waiter.pid) if line == ready
      end
      output = Thread.new { stdout.read }
      status = waiter.join(TIME_LIMIT)&.value
      unless status
        Process.kill(:KILL, waiter.pid)
        waiter.join
      end
      [out << output.value, errors.value, status]
    end
  end
end
