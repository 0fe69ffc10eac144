# frozen_string_literal: true

# UringMachine::DNS::Types: record types by name.

module UringMachine
  module DNS
    # Record types by name: :A, "aaaa", Resolv::DNS::Resource::IN::MX, ...
    module Types
      IN = Resolv::DNS::Resource::IN
      BY_NAME = {
        A: IN::A, AAAA: IN::AAAA, CNAME: IN::CNAME, MX: IN::MX, TXT: IN::TXT, SRV: IN::SRV,
        PTR: IN::PTR, NS: IN::NS, SOA: IN::SOA, HINFO: IN::HINFO, ANY: IN::ANY
      }.freeze
      NAMES = BY_NAME.invert.freeze
      # The usual name: letters, digits, "-" and "_" in labels of 1..63 (a linear match).
      HOST_NAME = /\A[-0-9A-Za-z_]{1,63}(?:\.[-0-9A-Za-z_]{1,63})*\z/

      module_function

      # Is +text+ (no trailing dot) a host name of at most 253 bytes? Others (any byte may
      # be in a label) are checked label by label.
      def plain?(text)
        text.bytesize <= 253 && HOST_NAME.match?(text)
      end
      private_class_method :plain?

      # The Resolv::DNS::Resource class for +type+, or ArgumentError.
      def resource_class(type)
        case type
        when Symbol, String
          BY_NAME.fetch(type.to_s.upcase.to_sym) do
            raise ArgumentError, "unknown DNS record type #{type.inspect} (known: #{BY_NAME.keys.join(', ')})"
          end
        when Class
          return type if type < Resolv::DNS::Resource && type.const_defined?(:TypeValue, false)

          raise ArgumentError, "#{type} is not a DNS record type"
        else
          raise TypeError, "DNS record type must be a Symbol, String or Resolv::DNS::Resource class, not #{type.class}"
        end
      end

      # :A for IN::A; the class's own name for a type this table does not know (resolv's
      # Type<code>_Class<class>, a name given here too where resolv 0.7 leaves it anonymous).
      def name_of(resource_class)
        NAMES.fetch(resource_class) do
          resource_class.name&.split("::")&.last&.to_sym ||
            :"Type#{resource_class::TypeValue}_Class#{resource_class::ClassValue}"
        end
      end

      # A DNS name as a String without the trailing dot, checked (ArgumentError) for the
      # limits of the wire format: labels of 1..63 bytes, 253 in all.
      def check_name(name)
        raise TypeError, "DNS name must be a String, not #{name.class}" unless name.is_a?(String) || name.is_a?(Resolv::DNS::Name)

        text = name.to_s
        text = text.delete_suffix(".") if text.end_with?(".") && text != "."
        return text if plain?(text) # the common case, at once
        raise ArgumentError, "empty DNS name" if text.empty?
        raise ArgumentError, "DNS name too long (#{text.bytesize} bytes, at most 253): #{text[0, 40]}..." if text.bytesize > 253
        return text if text == "."

        text.split(".", -1).each do |label|
          raise ArgumentError, "empty label in DNS name #{text.inspect}" if label.empty?
          raise ArgumentError, "DNS label longer than 63 bytes in #{text.inspect}" if label.bytesize > 63
        end
        text
      end
    end
  end
end
