// TLS towards back-end mail servers (STARTTLS as a client), shared by the
// edge's relay and the directory's callout probes.
//
// Modes, after Postfix's smtp_tls_security_level:
//   none          never STARTTLS;
//   opportunistic STARTTLS when the back-end offers it, plaintext otherwise
//                 (Postfix "may");
//   required      STARTTLS must be offered and succeed, or the connection
//                 fails and is treated like an unreachable back-end: mail is
//                 deferred (4xx), never sent in plaintext (Postfix "encrypt").
// With `verify`, the certificate chain is checked against `ca_file` (or the
// system's CA store when empty) and the name against `server_name` (or the
// route's host); a failed check fails the connection. Without it, TLS only
// protects against passive eavesdropping.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace doorman {

struct TlsClientSettings {
  enum class Mode { kNone, kOpportunistic, kRequired };
  Mode mode = Mode::kNone;
  bool verify = false;
  std::string ca_file;      // PEM bundle; "" = system default paths
  std::string server_name;  // name to verify; "" = the route's host
};

// "none" | "opportunistic" | "required". False when unknown.
bool parse_tls_mode(const std::string& text, TlsClientSettings::Mode* mode);

// Sets up a client SSL_CTX: TLS 1.2+, no renegotiation, and the trust store
// and verification mode of `s`. Returns "" or an error (unreadable CA file).
std::string configure_client_context(SSL_CTX* ctx, const TlsClientSettings& s);

// Per connection: SNI (unless `host` is an IP literal) and, with verify, the
// host name the certificate must match. `host` is the route's host.
void prepare_client_ssl(SSL* ssl, const TlsClientSettings& s, const std::string& host);

// The last OpenSSL error on this thread, as text, and the verification
// result of `ssl` when it failed. For logs.
std::string tls_error_text(SSL* ssl);

}  // namespace doorman
