# frozen_string_literal: true

# Tests of CRuby's own suites (suite_run.rb's SUITES) whose outcome under UringMachine::Scheduler may
# differ from the plain run (see suite_run.rb): name => { Ruby series => reason }. Each reason
# holds for any Fiber::Scheduler (Async's outcome is given beside it).
module ExpectedDifferences
  EVERY_SERIES = %w[3.1 3.3 3.4 4.0].freeze

  NAMED_SERVICE = "CRuby resolves the service after a scheduler's address_resolve hook with " \
                  "numeric_getaddrinfo, which accepts only a numeric port: Addrinfo.getaddrinfo" \
                  "(\"localhost\", \"ssh\") raises SocketError under any scheduler with that hook " \
                  "(Async 2.43 the same); the hook is given the host alone"
  FAMILY_ERROR_CODE = "Socket.getaddrinfo(host, port, \"AF_UNIX\") fails with EAI_FAMILY before " \
                      "any lookup in plain Ruby; under a scheduler CRuby calls address_resolve " \
                      "with the host alone (not the family) and, when no resolved address fits " \
                      "the hints, reports EAI_NONAME itself (Async the same)"
  UNROUTABLE_CONNECT = "depends on the host's network, not on the scheduler: connecting to " \
                       "192.0.2.1 (TEST-NET-1) is refused (ECONNREFUSED) now and then on this " \
                       "machine class, plain or scheduled (about 1 in 30 either way), which the " \
                       "test does not accept"
  HANDLE_INTERRUPT = "Thread.handle_interrupt masks are kept per thread, and a scheduler's timeout " \
                     "is raised in its fiber as the ring's timer fires, not through the thread's " \
                     "pending-interrupt queue, so a :never mask does not defer it (Async 2.43 fails " \
                     "the same)"

  LIST = {
    "TestIO#test_close_read" => {
      "4.0" => "CRuby 4.0 bug with any scheduler that has fiber_interrupt: after close_read of " \
               "IO.popen(..., 'r+'), IO#write registers its blocking operation on the write IO, " \
               "whose stream close_read swapped for the closed read one, and raises IOError " \
               "before any hook runs (seen with UringMachine.fast_io = false: the fast path " \
               "writes straight to the fd and passes)"
    },
    "TestSocketAddrinfo#test_addrinfo_timeout" => EVERY_SERIES.to_h { |s| [s, NAMED_SERVICE] },
    "TestSocket#test_resolurion_error_error_code" => %w[3.3 3.4 4.0].to_h { |s| [s, FAMILY_ERROR_CODE] },
    "TestSocket_TCPSocket#test_initialize_connect_timeout" => EVERY_SERIES.to_h { |s| [s, UNROUTABLE_CONNECT] },
    "TestTimeout#test_handle_interrupt" => EVERY_SERIES.to_h { |s| [s, HANDLE_INTERRUPT] },
    "TestTimeout#test_handle_interrupt_with_exception_class" => EVERY_SERIES.to_h { |s| [s, HANDLE_INTERRUPT] },
    "TestTimeout#test_handle_interrupt_with_interrupt_mask_inheritance" =>
      EVERY_SERIES.to_h { |s| [s, HANDLE_INTERRUPT] },
    "TestTimeout#test_handle_interrupt_with_interrupt_mask_inheritance_with_exception_class" =>
      EVERY_SERIES.to_h { |s| [s, HANDLE_INTERRUPT] }
  }.freeze

  # The reason +name+ may differ on this Ruby, or nil.
  def self.reason(name)
    LIST.dig(name, RUBY_VERSION.split(".").first(2).join("."))
  end
end
