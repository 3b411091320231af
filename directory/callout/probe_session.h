// One SMTP probe session to a back-end: the client side of RFC 5321 over a
// blocking TCP socket, every step bounded by poll() timeouts.
//
// open() connects (non-blocking connect + poll, connect timeout), reads the
// greeting, says EHLO (HELO when EHLO is refused). command() sends one line
// and reads one reply (command timeout). Replies are parsed by the sans-I/O
// smtp::ReplyParser (line and size limits are its own). Runs only on probe
// threads (callout/prober.h); never on gRPC or Redis threads.
//
// SECURITY: talks to the back-ends we protect (trusted more than SMTP
// clients, but bounded: reply limits, timeouts). What it learns (reply
// texts) goes to logs and the admin API only, never to SMTP clients.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <string>

#include "common/tls_client.h"
#include "smtp/reply_parser.h"

namespace doorman::directory::callout {

class ProbeSession {
 public:
  enum class Error {
    kNone, kConnect, kTimeout, kIo, kProtocol,
    kRefused,  // greeting or EHLO/HELO not 2xx
    kTls,      // TLS required but not offered, refused, or the handshake/verification failed
  };

  ProbeSession() = default;
  ~ProbeSession();
  ProbeSession(const ProbeSession&) = delete;
  ProbeSession& operator=(const ProbeSession&) = delete;

  // route is "host:port" (host: name, IPv4 or [IPv6]). With `tls` (and its
  // context), STARTTLS per tls->mode after EHLO, then EHLO again; a failed
  // TLS requirement is kTls.
  Error open(const std::string& route, const std::string& helo, std::chrono::milliseconds connect_timeout,
             std::chrono::milliseconds command_timeout, const TlsClientSettings* tls = nullptr,
             SSL_CTX* tls_context = nullptr);
  // Sends `line` + CRLF, reads one reply.
  Error command(const std::string& line, smtp::ParsedReply* reply);
  // QUIT (reply awaited up to one second) and close.
  void quit();
  void close();
  bool is_open() const { return fd_ >= 0; }
  bool tls_active() const { return ssl_ != nullptr; }

  const std::string& route() const { return route_; }
  const std::string& last_error() const { return error_; }  // for logs
  int probes = 0;  // probes made on this session
  std::chrono::steady_clock::time_point last_used{};

 private:
  Error read_reply(smtp::ParsedReply* reply, std::chrono::milliseconds timeout);
  Error fail(Error e, std::string what);
  Error start_tls(const TlsClientSettings& tls, SSL_CTX* ctx, const std::string& host, const std::string& helo);
  // Waits for `events` on the socket until `deadline`; false on timeout.
  bool wait(short events, std::chrono::steady_clock::time_point deadline);
  // One read of at most `cap` bytes (TLS or plain): >0 bytes, 0 closed,
  // -1 error, -2 timed out.
  long read_some(char* buf, size_t cap, std::chrono::steady_clock::time_point deadline);
  Error write_all(const std::string& out, std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string route_;
  std::string error_;
  std::string buf_;
  smtp::ReplyParser parser_;
  std::chrono::milliseconds command_timeout_{10000};
};

const char* error_name(ProbeSession::Error e);

}  // namespace doorman::directory::callout
