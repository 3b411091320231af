// The Asio shell around smtp::Client: one SMTP client connection to a
// back-end on one executor. Used by the edge's live relay (edge/net/relay.cc)
// and the directory's callout prober (directory/callout/prober.cc); every
// protocol rule is smtp::Client's, this file only moves bytes and keeps time.
//
// open() resolves and connects (connect timeout), then lets the client read
// the greeting (greeting timeout), say EHLO (HELO fallback) and STARTTLS per
// the TLS policy, each step with the command timeout. transact() and send()
// run one step each with the given timeout, re-armed at every write. A
// timeout or an I/O error closes the connection; the status says why. No
// logging and no metrics: the callers know what a failure means to them.
//
// SmtpClientPool keeps idle connections per back-end ("host:port") for
// reuse: at most `max_idle` per back-end, for at most `idle_timeout`. Not
// thread-safe: one pool per executor thread.
//
// Talks to back-end servers only (configured routes). Standards: RFC 5321
// client side, RFC 2920, RFC 3207; limits are smtp::ReplyParser's.
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/tls_client.h"
#include "smtp/client.h"

namespace doorman {

// STARTTLS towards back-ends (common/tls_client.h); `context` is null when
// the mode is none.
struct SmtpClientTls {
  TlsClientSettings settings;
  std::shared_ptr<boost::asio::ssl::context> context;
};

// A client context for `tls` (TLS 1.2+, trust and verification per the
// settings), or null with `*error` set. Null without error for mode none.
std::shared_ptr<boost::asio::ssl::context> make_client_context(const TlsClientSettings& tls, std::string* error);

struct SmtpClientStatus {
  enum class Error {
    kNone,
    kConnect,   // resolve or connect failed
    kTimeout,   // a step took longer than its timeout
    kIo,        // the connection broke
    kRefused,   // greeting or EHLO/HELO refused
    kTls,       // STARTTLS required and not possible, or the handshake failed
    kProtocol,  // the server broke the protocol
  };
  Error error = Error::kNone;
  std::string detail;  // for logs
  bool ok() const { return error == Error::kNone; }
};

const char* error_name(SmtpClientStatus::Error e);

struct SmtpClientTimeouts {
  std::chrono::milliseconds connect{30000};
  std::chrono::milliseconds greeting{300000};
  std::chrono::milliseconds command{300000};
};

class SmtpClientConnection : public std::enable_shared_from_this<SmtpClientConnection> {
 public:
  using Done = std::function<void(const SmtpClientStatus&)>;
  using RepliesDone = std::function<void(const SmtpClientStatus&, std::vector<smtp::ParsedReply>)>;

  SmtpClientConnection(boost::asio::any_io_executor executor, std::string helo_name, const SmtpClientTls* tls);

  // Connects to "host:port" ("[v6]:port"; port 25 when none), reads the
  // greeting, says EHLO and (per the TLS policy) STARTTLS and EHLO again.
  void open(const std::string& host_port, const SmtpClientTimeouts& timeouts, Done done);
  // Each line (CRLF added), pipelined when offered; one reply per line.
  void transact(std::vector<std::string> lines, std::chrono::milliseconds timeout, RepliesDone done);
  // Raw bytes, then `replies` replies (0: just write).
  void send(std::string bytes, size_t replies, std::chrono::milliseconds timeout, RepliesDone done);
  // QUIT, its reply awaited up to `timeout`, then close.
  void quit(std::chrono::milliseconds timeout);
  void close();

  bool usable() const { return client_.idle() && !broken_; }
  const std::string& key() const { return key_; }
  const smtp::ServerExtensions& extensions() const { return client_.extensions(); }
  bool tls_active() const { return client_.tls_active(); }
  int starttls_refused() const { return client_.starttls_refused(); }

  std::chrono::steady_clock::time_point idle_since{};
  int transactions = 0;  // for the caller: e.g. probes made on this connection

 private:
  void step();
  void arm(std::chrono::milliseconds timeout);
  void finish(SmtpClientStatus status, std::vector<smtp::ParsedReply> replies = {});
  void handshake();
  SmtpClientStatus io_error(const boost::system::error_code& ec) const;

  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_stream_;
  const SmtpClientTls* tls_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  smtp::Client client_;
  std::string key_;
  std::string host_;  // the route's host, for SNI and verification
  std::chrono::milliseconds step_timeout_{300000};
  std::string outbuf_;
  std::array<char, 4096> inbuf_{};
  Done open_done_;
  RepliesDone replies_done_;
  bool broken_ = false;
  bool timed_out_ = false;
  uint64_t timer_generation_ = 0;  // which step the running timer belongs to
};

class SmtpClientPool {
 public:
  SmtpClientPool(size_t max_idle, std::chrono::milliseconds idle_timeout)
      : max_idle_(max_idle), idle_timeout_(idle_timeout) {}
  // An idle, unexpired connection to `key`, or nullptr.
  std::shared_ptr<SmtpClientConnection> take(const std::string& key);
  // Keeps `c` if it is usable (the oldest beyond max_idle is closed).
  void put(std::shared_ptr<SmtpClientConnection> c);
  // QUITs (reply awaited up to `quit_timeout`) every connection idle for
  // longer than idle_timeout; all of them with `all`.
  void expire(std::chrono::milliseconds quit_timeout, bool all = false);
  size_t idle() const;

 private:
  size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
  std::map<std::string, std::deque<std::shared_ptr<SmtpClientConnection>>> idle_;
};

}  // namespace doorman
