// The edge's client side towards back-end mail servers, for live relay.
//
// BackendConnection is one SMTP client connection on one io_context: connect
// (with a timeout), greeting, EHLO (HELO fallback), then commands sent
// pipelined when the server offers PIPELINING, raw data chunks, and replies
// parsed by the sans-I/O smtp::ReplyParser. Every step has a timeout; a
// timeout or I/O error closes the connection and is reported as !ok.
//
// BackendPool keeps idle connections per back-end ("host:port") for reuse
// across transactions (RSET between), at most `max_idle` per back-end and for
// at most `idle_timeout`. One pool per io_context thread: no locks.
//
// Talks to back-end servers only (configured routes), never to clients.
// Limits: reply line 2048 octets, 64 lines per reply (ReplyParser).
// Standards: RFC 5321 client side, RFC 2920 (PIPELINING), RFC 1870 (SIZE),
// RFC 6152 (8BITMIME); timeouts per RFC 5321 §4.5.3.2 by default.
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/tls_client.h"
#include "smtp/reply.h"
#include "smtp/reply_parser.h"

namespace doorman::edge {

struct BackendTimeouts {
  std::chrono::milliseconds connect{30000};
  std::chrono::milliseconds greeting{300000};  // RFC 5321: 5 min
  std::chrono::milliseconds command{300000};   // MAIL, RCPT: 5 min
  std::chrono::milliseconds data_init{120000}; // DATA: 2 min
  std::chrono::milliseconds data_block{180000};  // each chunk: 3 min
  std::chrono::milliseconds data_end{600000};  // final dot: 10 min
};

// STARTTLS towards back-ends (common/tls_client.h); `context` is null when
// the mode is none.
struct BackendTls {
  TlsClientSettings settings;
  std::shared_ptr<boost::asio::ssl::context> context;
};

class BackendConnection : public std::enable_shared_from_this<BackendConnection> {
 public:
  using Done = std::function<void(bool ok)>;
  using RepliesDone = std::function<void(bool ok, std::vector<smtp::Reply> replies)>;

  BackendConnection(boost::asio::any_io_executor executor, const BackendTimeouts& timeouts, std::string helo_name,
                    const BackendTls* tls = nullptr);

  // Connects to "host:port" (resolving names), reads the greeting, says EHLO,
  // and (per the TLS mode) STARTTLS and EHLO again.
  void open(const std::string& host_port, Done done);
  // Sends each line (CRLF added) and collects one reply per line, pipelined
  // when the server offers PIPELINING, else one at a time.
  void transact(std::vector<std::string> lines, std::chrono::milliseconds timeout, RepliesDone done);
  // Writes raw bytes, then reads `replies` replies (0: just write).
  void send(std::string bytes, size_t replies, std::chrono::milliseconds timeout, RepliesDone done);
  void close();

  // The client session using this connection now, for log lines (a pooled
  // connection serves one session after another).
  void set_session(std::string id) { session_ = std::move(id); }
  bool usable() const { return open_ && !broken_; }
  const std::string& key() const { return key_; }
  bool pipelining() const { return pipelining_; }
  bool offers_size() const { return size_; }
  bool offers_8bitmime() const { return eightbit_; }
  bool tls_active() const { return tls_stream_ != nullptr; }
  std::chrono::steady_clock::time_point idle_since;

 private:
  void fail(const RepliesDone& done);
  void parse_extensions();  // from the EHLO reply in last_lines_
  void after_ehlo(Done done);  // STARTTLS per the TLS mode, then open
  void handshake(Done done);
  void ehlo_again(Done done);
  void read_replies(size_t remaining, std::vector<smtp::Reply> acc, RepliesDone done);
  void sequential(std::vector<std::string> lines, size_t next, std::chrono::milliseconds timeout,
                  std::vector<smtp::Reply> acc, RepliesDone done);

  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_stream_;
  const BackendTls* tls_;
  std::string host_;  // the route's host, for SNI and verification
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer timer_;
  const BackendTimeouts& timeouts_;
  std::string helo_name_;
  std::string key_;
  std::string session_;
  smtp::ReplyParser parser_;
  std::string inbuf_;  // received, not yet parsed
  std::vector<std::string> last_lines_;  // lines of the last reply read
  std::string outbuf_;
  bool open_ = false;
  bool broken_ = false;
  bool pipelining_ = false;
  bool size_ = false;
  bool eightbit_ = false;
  bool starttls_ = false;  // offered in the EHLO reply
};

class BackendPool {
 public:
  BackendPool(size_t max_idle, std::chrono::milliseconds idle_timeout)
      : max_idle_(max_idle), idle_timeout_(idle_timeout) {}
  // An idle connection to `key`, or nullptr.
  std::shared_ptr<BackendConnection> take(const std::string& key);
  void put(std::shared_ptr<BackendConnection> c);
  size_t idle() const;

 private:
  size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
  std::map<std::string, std::deque<std::shared_ptr<BackendConnection>>> idle_;
};

}  // namespace doorman::edge
