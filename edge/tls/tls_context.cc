#include "edge/tls/tls_context.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <ctime>

#include "common/log.h"

namespace doorman::edge {

namespace ssl = boost::asio::ssl;

namespace {
constexpr long kSessionCacheSize = 1024;
}  // namespace

std::string TlsSessionInfo::description() const {
  return version + " with cipher " + cipher + " (" + std::to_string(bits) + "/" + std::to_string(alg_bits) + " bits)";
}

TlsSessionInfo tls_session_info(SSL* ssl) {
  TlsSessionInfo info;
  info.version = SSL_get_version(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
    info.cipher = SSL_CIPHER_get_name(c);
    info.bits = SSL_CIPHER_get_bits(c, &info.alg_bits);
  }
  return info;
}

TlsServerContext::TlsServerContext(TlsServerSettings settings, LoadObserver observer)
    : settings_(std::move(settings)), observer_(std::move(observer)) {}

TlsServerContext::Stamp TlsServerContext::stamp(const std::string& path) {
  struct stat st {};
  Stamp s;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.ok = true;
  s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  s.size = static_cast<long long>(st.st_size);
  s.ino = static_cast<long long>(st.st_ino);
  return s;
}

std::string TlsServerContext::build(std::shared_ptr<ssl::context>* out, double* not_after) const {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                   ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                   ssl::context::single_dh_use);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Memory per idle session (issue #16): OpenSSL frees a session's record
  // buffers (17 KB read, 17 KB write) whenever they are empty, instead of
  // keeping them for its life.
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  // Resumption: TLS 1.3 and TLS 1.2 clients that take a ticket resume from
  // a stateless ticket (nothing kept here); one ticket per handshake is
  // enough for an MTA, which caches one session per destination. Only TLS 1.2
  // clients without tickets could use the server's session cache: bounded to
  // kSessionCacheSize entries (OpenSSL's default is 20,480).
  SSL_CTX_set_num_tickets(native, 1);
  SSL_CTX_sess_set_cache_size(native, kSessionCacheSize);
  SSL_CTX_set_min_proto_version(native, settings_.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  if (!settings_.ciphers.empty() && SSL_CTX_set_cipher_list(native, settings_.ciphers.c_str()) != 1)
    return "tls-ciphers: no usable cipher in '" + settings_.ciphers + "'";
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(settings_.cert_file, ec);
  if (ec) return "tls-cert-file " + settings_.cert_file + ": " + ec.message();
  ctx->use_private_key_file(settings_.key_file, ssl::context::pem, ec);
  if (ec) return "tls-key-file " + settings_.key_file + ": " + ec.message();
  if (SSL_CTX_check_private_key(native) != 1) return "tls-key-file does not match the certificate";
  *not_after = 0;
  if (X509* cert = SSL_CTX_get0_certificate(native)) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) *not_after = static_cast<double>(timegm(&tm));
  }
  *out = std::move(ctx);
  return "";
}

std::string TlsServerContext::load() {
  std::lock_guard lock(mu_);
  Stamp cert = stamp(settings_.cert_file), key = stamp(settings_.key_file);
  std::shared_ptr<ssl::context> ctx;
  double not_after = 0;
  std::string err = build(&ctx, &not_after);
  if (observer_) observer_(err.empty(), not_after);
  if (!err.empty()) return err;
  ctx_ = std::move(ctx);
  cert_stamp_ = cert;
  key_stamp_ = key;
  last_check_ = Clock::now();
  return "";
}

void TlsServerContext::maybe_reload(bool force) {
  Clock::time_point now = Clock::now();
  if (!force && now - last_check_ < settings_.check_interval) return;
  last_check_ = now;
  Stamp cert = stamp(settings_.cert_file), key = stamp(settings_.key_file);
  if (cert == cert_stamp_ && key == key_stamp_) return;
  std::shared_ptr<ssl::context> ctx;
  double not_after = 0;
  std::string err = build(&ctx, &not_after);
  if (observer_) observer_(err.empty(), not_after);
  if (!err.empty()) {
    // Keep serving the old pair; try again at the next change (or next
    // interval, since the stamps stay unrecorded).
    log::error("tls_reload_failed").kv("error", err);
    return;
  }
  log::info("tls_reloaded").kv("cert", settings_.cert_file).kv("not_after", static_cast<int64_t>(not_after));
  ctx_ = std::move(ctx);
  cert_stamp_ = cert;
  key_stamp_ = key;
}

std::shared_ptr<ssl::context> TlsServerContext::current() {
  std::lock_guard lock(mu_);
  maybe_reload(false);
  return ctx_;
}

void TlsServerContext::check_now() {
  std::lock_guard lock(mu_);
  maybe_reload(true);
}

}  // namespace doorman::edge
