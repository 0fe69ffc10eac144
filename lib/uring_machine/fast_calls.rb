# frozen_string_literal: true

require "socket"

module UringMachine
  # IO#read_nonblock, IO#syswrite and BasicSocket#recv make their syscall themselves
  # (UringMachine::FastCalls, in Rust: scheduler/fast_nonblock.rs and fast_socket.rs) when the
  # current fiber is non-blocking under a UringMachine::Scheduler and CRuby's method would make
  # just that syscall: read_nonblock answers EAGAIN and EOF as CRuby's does; the others take
  # CRuby's method when it would block. (BasicSocket#send stays CRuby's: no measurable gain.)
  # FastCalls answers false for "CRuby's method", which none of these returns. Switched with
  # UringMachine.fast_io.
  #
  # These replace the methods (CRuby's stay under a private alias) instead of being prepended:
  # a prepended method's `super` costs ~130 ns on 3.1 (~220 with keywords), 15-30% of these
  # calls when they take CRuby's method (no scheduler, blocking fibers); a call of the alias
  # costs ~40.
  module FastCalls
    # Puts +name+ of +klass+ under a private alias and returns the alias.
    def self.keep_cruby(klass, name)
      cruby = :"__cruby_#{name}"
      klass.alias_method(cruby, name)
      klass.__send__(:private, cruby)
      cruby
    end

    # Replaces the methods; run with the first Machine (see OnFirstMachine).
    def self.install
      keep_cruby(::IO, :read_nonblock)
      keep_cruby(::IO, :syswrite)
      keep_cruby(::BasicSocket, :recv)
      ::IO.class_eval do
        def read_nonblock(maxlen, outbuf = nil, exception: true)
          result = UringMachine::FastCalls.read_nonblock(self, maxlen, outbuf, exception)
          result.equal?(false) ? __cruby_read_nonblock(maxlen, outbuf, exception: exception) : result
        end

        def syswrite(string)
          result = UringMachine::FastCalls.syswrite(self, string)
          result.equal?(false) ? __cruby_syswrite(string) : result
        end
      end
      ::BasicSocket.class_eval do
        # flags and outbuf nil are what CRuby's recv takes for "none given".
        def recv(maxlen, flags = nil, outbuf = nil)
          result = UringMachine::FastCalls.recv(self, maxlen, flags, outbuf)
          result.equal?(false) ? __cruby_recv(maxlen, flags, outbuf) : result
        end
      end
    end
  end

  OnFirstMachine.install { FastCalls.install }
end
