# frozen_string_literal: true

require "openssl"

# A self-signed certificate for 127.0.0.1 / localhost (EC P-256: quick to make), made once.
module TLSCertificate
  module_function

  def key
    @key ||= OpenSSL::PKey::EC.generate("prime256v1")
  end

  def certificate
    @certificate ||= begin
      name = OpenSSL::X509::Name.parse("/CN=localhost")
      cert = OpenSSL::X509::Certificate.new
      cert.version = 2
      cert.serial = 1
      cert.subject = name
      cert.issuer = name
      cert.public_key = key
      cert.not_before = Time.now - 60
      cert.not_after = Time.now + 3600
      extensions = OpenSSL::X509::ExtensionFactory.new
      extensions.subject_certificate = cert
      extensions.issuer_certificate = cert
      cert.add_extension(extensions.create_extension("basicConstraints", "CA:TRUE", true))
      cert.add_extension(extensions.create_extension("subjectAltName", "DNS:localhost,IP:127.0.0.1"))
      cert.sign(key, OpenSSL::Digest.new("SHA256"))
      cert
    end
  end

  def server_context
    context = OpenSSL::SSL::SSLContext.new
    context.cert = certificate
    context.key = key
    context
  end

  # Verifies the peer against this certificate only.
  def client_context
    context = OpenSSL::SSL::SSLContext.new
    store = OpenSSL::X509::Store.new
    store.add_cert(certificate)
    context.cert_store = store
    context.verify_mode = OpenSSL::SSL::VERIFY_PEER
    context.verify_hostname = true
    context
  end
end
