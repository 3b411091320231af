// The edge's TLS server context for STARTTLS (RFC 3207), and its reload.
//
// TlsServerContext loads a PEM certificate chain and private key into an
// OpenSSL context: TLS 1.2 or newer only (or 1.3 only), no renegotiation, no
// compression, server cipher preference, OpenSSL's default cipher list unless
// one is configured; record buffers released while empty, one session
// ticket per handshake, a bounded session cache (memory per idle session,
// see tls_stream.h). current() returns the context for a new handshake; at
// most once per `check_interval` it stats both files (following symlinks, as
// Kubernetes Secret volumes swap a `..data` symlink) and, when either
// changed, loads them again. A pair that fails to load (half-written files,
// a key that does not match) is logged and counted, and the previous context
// stays in use: a bad rotation never takes STARTTLS down. A session keeps the
// context it started with (shared_ptr) while newer sessions use the new one.
//
// Thread-safe: current() may be called from every I/O thread (a mutex taken
// once per STARTTLS, never per byte).
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace doorman::edge {

struct TlsServerSettings {
  std::string cert_file;  // PEM: the certificate, then its chain
  std::string key_file;   // PEM private key
  std::string min_version = "1.2";  // "1.2" or "1.3"
  std::string ciphers;    // TLS 1.2 cipher list; "" = OpenSSL's default
  std::chrono::milliseconds check_interval{5000};
};

// What a finished handshake used, for logs and the Received header.
struct TlsSessionInfo {
  std::string version;  // "TLSv1.3"
  std::string cipher;   // "TLS_AES_256_GCM_SHA384"
  int bits = 0;
  int alg_bits = 0;
  // "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)"
  std::string description() const;
};
TlsSessionInfo tls_session_info(SSL* ssl);

class TlsServerContext {
 public:
  using Clock = std::chrono::steady_clock;
  // Called after every load attempt: ok, and the certificate's notAfter as
  // Unix time (0 when unknown). For metrics.
  using LoadObserver = std::function<void(bool ok, double not_after)>;

  explicit TlsServerContext(TlsServerSettings settings, LoadObserver observer = {});

  // Loads the files the first time. Returns "" or what is wrong with them.
  std::string load();
  // The context for a new handshake (reloaded first if the files changed).
  std::shared_ptr<boost::asio::ssl::context> current();
  // Check the files now, regardless of the interval (tests, SIGHUP).
  void check_now();

 private:
  struct Stamp {
    bool ok = false;
    long long mtime_ns = 0, size = 0, ino = 0;
    bool operator==(const Stamp&) const = default;
  };
  static Stamp stamp(const std::string& path);
  std::string build(std::shared_ptr<boost::asio::ssl::context>* out, double* not_after) const;
  void maybe_reload(bool force);

  TlsServerSettings settings_;
  LoadObserver observer_;
  std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> ctx_;
  Stamp cert_stamp_, key_stamp_;
  Clock::time_point last_check_{};
};

}  // namespace doorman::edge
