#include "common/tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace doorman {

bool parse_tls_mode(const std::string& text, TlsClientSettings::Mode* mode) {
  if (text == "none") *mode = TlsClientSettings::Mode::kNone;
  else if (text == "opportunistic") *mode = TlsClientSettings::Mode::kOpportunistic;
  else if (text == "required") *mode = TlsClientSettings::Mode::kRequired;
  else return false;
  return true;
}

std::string configure_client_context(SSL_CTX* ctx, const TlsClientSettings& s) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (!s.verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return "";
  }
  int ok = s.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                             : SSL_CTX_load_verify_locations(ctx, s.ca_file.c_str(), nullptr);
  if (ok != 1) {
    unsigned long e = ERR_get_error();
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return "backend-tls-ca-file " + s.ca_file + ": " + buf;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  return "";
}

void prepare_client_ssl(SSL* ssl, const TlsClientSettings& s, const std::string& host) {
  const std::string& name = s.server_name.empty() ? host : s.server_name;
  unsigned char addr[16];
  bool is_ip = inet_pton(AF_INET, name.c_str(), addr) == 1 || inet_pton(AF_INET6, name.c_str(), addr) == 1;
  if (!is_ip && !name.empty()) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (!s.verify || name.empty()) return;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, name.c_str());
  }
}

std::string tls_error_text(SSL* ssl) {
  std::string out;
  if (ssl) {
    long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) out = std::string("certificate: ") + X509_verify_cert_error_string(v);
  }
  unsigned long e = ERR_peek_last_error();
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  ERR_clear_error();
  return out.empty() ? "handshake failed" : out;
}

}  // namespace doorman
