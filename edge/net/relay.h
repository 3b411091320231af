// Performs the Session's RelayOps against back-end servers: one back-end
// transaction at a time per client session, on the session's io_context.
//
// Opening walks the route in priority order: an idle pooled connection to a
// back-end is tried first, and if it turns out broken (I/O error on MAIL) a
// fresh connection to the same back-end replaces it without failing the
// transaction; a back-end that cannot be reached is skipped; when none can
// be reached the result is kUnreachable (451 4.4.1). MAIL FROM carries SIZE
// and BODY=8BITMIME only when the back-end offers them. A finished
// transaction is RSET and returned to the pool; an abandoned one (bad
// message, client gone) is closed without the final dot. With a limiter,
// a back-end at its connection limit is skipped like an unreachable one, and
// a route whose back-ends are all full or unreachable, at least one full,
// gives kBusy (451 4.4.5).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "edge/net/backend.h"
#include "edge/net/backend_limit.h"
#include "edge/session/session.h"

namespace doorman::edge {

class Relay {
 public:
  using Done = std::function<void(RelayResult)>;

  // `limiter` (optional) caps the connections per back-end across sessions.
  Relay(boost::asio::any_io_executor executor, BackendPool& pool, const BackendTimeouts& timeouts,
        std::string helo_name, const SmtpClientTls* tls = nullptr, BackendLimiter* limiter = nullptr);
  ~Relay();

  // Starts `op`; `done` is called once, later, for every kind but kAbort and
  // kRelease (which complete silently).
  void perform(const RelayOp& op, Done done);
  // The client session's id, carried into back-end log lines.
  void set_session(std::string id) { session_ = std::move(id); }
  // Closes the back-end connection (an unfinished transaction is abandoned).
  void close();
  // The client session is over: close, and open nothing more for it (a
  // connection still being opened is closed when it completes).
  void abandon();

 private:
  void try_route(std::shared_ptr<RelayOp> op, size_t index, Done done);
  void open_fresh(std::shared_ptr<RelayOp> op, size_t index, Done done);
  void start_mail(std::shared_ptr<SmtpClientConnection> c, std::shared_ptr<RelayOp> op, Done done,
                  std::function<void()> on_io_failure);
  void lost(Done done);
  // Logs and counts how opening a fresh connection went (TLS, failures).
  void observe_open(const SmtpClientConnection& c, const SmtpClientStatus& status);
  void release_lease();  // gives back this session's count on a back-end

  boost::asio::any_io_executor executor_;
  BackendPool& pool_;
  const BackendTimeouts& timeouts_;
  std::string helo_name_;
  const SmtpClientTls* tls_;
  std::shared_ptr<SmtpClientConnection> conn_;
  BackendLimiter* limiter_;
  std::string session_;
  std::string lease_;  // the back-end this session counts on ("" = none)
  bool busy_ = false;
  bool abandoned_ = false;  // a back-end of the route being tried was at its limit
};

}  // namespace doorman::edge
