# frozen_string_literal: true

# The Rack env of a request: the parsed head's fields plus the request line's parts, the
# server's and the connection's constant entries.

module UringMachine
  module Rack
    # Builds envs for one connection.
    class Env
      RACK_VERSION = defined?(::Rack::VERSION) ? ::Rack::VERSION : [1, 3]
      PROTOCOLS = { 0 => "HTTP/1.0", 1 => "HTTP/1.1" }.freeze

      # +server_env+: the entries every request of the server shares (Server#base_env).
      def initialize(server_env, remote_addr)
        @base = server_env.merge("REMOTE_ADDR" => remote_addr)
      end

      # The env of a parsed head ([method, target, minor_version, fields, _end]).
      def build(head, input)
        method, target, minor, fields = head
        env = @base.dup.update(fields) # a copy of a large Hash is cheaper than growing a small one
        env["REQUEST_METHOD"] = method
        env["SERVER_PROTOCOL"] = env["HTTP_VERSION"] = PROTOCOLS.fetch(minor)
        env["REQUEST_URI"] = target
        path_and_query(env, target)
        server_name_and_port(env)
        env["rack.input"] = input
        env
      end

      private

      # PATH_INFO and QUERY_STRING, from the origin form ("/a?b") or the absolute form
      # ("http://host/a?b", which a proxy sends).
      def path_and_query(env, target)
        target = target.sub(%r{\A[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*}, "") unless target.start_with?("/")
        if (mark = target.index("?"))
          env["PATH_INFO"] = target.byteslice(0, mark)
          env["QUERY_STRING"] = target.byteslice(mark + 1, target.bytesize)
        else
          env["PATH_INFO"] = target
          env["QUERY_STRING"] = ""
        end
      end

      # From the Host field when there is one, else the server's bound address.
      def server_name_and_port(env)
        host = env["HTTP_HOST"] or return
        colon = host.rindex(":")
        colon = nil if colon && host.index("]", colon) # an IPv6 address without a port: "[::1]"
        env["SERVER_NAME"] = colon ? host.byteslice(0, colon) : host
        env["SERVER_PORT"] = colon ? host.byteslice(colon + 1, host.bytesize) : "80"
      end
    end
  end
end
