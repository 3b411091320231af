// The edge's side of back-end connections for live relay: the per-step
// timeouts, and the pool of idle connections per back-end. The SMTP client
// itself is the shared one (smtp/client.h, driven by
// common/smtp_client_connection.h), the same the directory's callouts use.
//
// BackendPool keeps idle connections per back-end ("host:port") for reuse
// across transactions (RSET between), at most `max_idle` per back-end and for
// at most `idle_timeout`, and keeps doorman_edge_backend_connections_idle in
// step. One pool per io_context thread: no locks.
//
// Timeouts per RFC 5321 §4.5.3.2 by default.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/smtp_client_connection.h"

namespace doorman::edge {

struct BackendTimeouts {
  std::chrono::milliseconds connect{30000};
  std::chrono::milliseconds greeting{300000};  // RFC 5321: 5 min
  std::chrono::milliseconds command{300000};   // MAIL, RCPT: 5 min
  std::chrono::milliseconds data_init{120000}; // DATA: 2 min
  std::chrono::milliseconds data_block{180000};  // each chunk: 3 min
  std::chrono::milliseconds data_end{600000};  // final dot: 10 min

  SmtpClientTimeouts opening() const { return {connect, greeting, command}; }
};

class BackendPool {
 public:
  BackendPool(size_t max_idle, std::chrono::milliseconds idle_timeout) : pool_(max_idle, idle_timeout) {}
  // An idle connection to `key`, or nullptr.
  std::shared_ptr<SmtpClientConnection> take(const std::string& key);
  void put(std::shared_ptr<SmtpClientConnection> c);
  size_t idle() const { return pool_.idle(); }

 private:
  SmtpClientPool pool_;
};

}  // namespace doorman::edge
