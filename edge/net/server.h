// The edge's Asio shell: a listener and one io_context per thread, each
// connection living on one io_context (no strands needed, no locks on the
// data path). Connections are thin: they move bytes between the socket and
// the pure Session and perform the Session's Actions (write, delay, ask the
// directory, close).
//
// Talks to SMTP clients on the network. Protected by: max concurrent
// sessions (421 4.7.0), the idle timeout (421 4.4.2), read-side back-pressure
// (no read while a directory call is outstanding, while replies are delayed,
// or while more than 64 KiB of replies wait to be written), and the
// Session's own limits.
//
// Graceful stop (SIGTERM/SIGINT): stop accepting, tell every session (idle
// ones get 421 4.3.2 at once, busy ones after their transaction), then force
// the rest closed after the grace period and return from run().
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>

#include <atomic>
#include <mutex>
#include <unordered_map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "edge/config.h"
#include "edge/directory_client.h"
#include "edge/net/backend.h"
#include "edge/net/backend_limit.h"

namespace doorman::edge {

class Connection;
class TlsServerContext;

class Server {
 public:
  // `tls`: the STARTTLS context (loaded), or null when TLS is not configured.
  Server(const EdgeConfig& config, DirectoryClient& directory, TlsServerContext* tls = nullptr);
  ~Server();

  // Binds the listener. Returns "" or an error message.
  std::string bind();
  // The bound port (useful with port 0).
  uint16_t port() const;
  // Runs until the server has stopped (after a signal or stop()).
  void run();
  // Starts the graceful stop. Thread-safe.
  void stop();
  // Listening and not draining (for /readyz). Thread-safe.
  bool ready() const { return ready_.load(); }

  // For connections.
  const SessionConfig& session_config() const { return session_config_; }
  const EdgeConfig& config() const { return config_; }
  DirectoryClient& directory() { return directory_; }
  TlsServerContext* tls() { return tls_; }
  void on_connection_closed(Connection* c, size_t context_index);
  // Counts a session from `ip`; false when the per-address limit is reached.
  bool acquire_ip(const std::string& ip);
  void release_ip(const std::string& ip);
  BackendPool& pool(size_t context_index) { return contexts_[context_index]->pool; }
  BackendLimiter& backend_limiter() { return backend_limiter_; }
  const BackendTimeouts& backend_timeouts() const { return backend_timeouts_; }
  const SmtpClientTls& backend_tls() const { return backend_tls_; }
  // Sets up TLS towards back-ends (before run()). Returns "" or an error.
  std::string set_backend_tls(const TlsClientSettings& settings);

 private:
  struct Context {
    Context(size_t max_idle, std::chrono::milliseconds idle) : pool(max_idle, idle) {}
    boost::asio::io_context io{1};
    std::set<std::shared_ptr<Connection>> connections;  // touched only on io's thread
    BackendPool pool;                                   // touched only on io's thread
  };
  void do_accept();
  void begin_stop();
  void check_stopped();

  const EdgeConfig& config_;
  SessionConfig session_config_;
  BackendTimeouts backend_timeouts_;
  SmtpClientTls backend_tls_;
  BackendLimiter backend_limiter_;
  DirectoryClient& directory_;
  TlsServerContext* tls_;
  std::vector<std::unique_ptr<Context>> contexts_;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer grace_timer_;
  size_t next_context_ = 0;
  std::atomic<int64_t> sessions_{0};
  std::atomic<uint64_t> next_id_{1};
  bool stopping_ = false;  // on contexts_[0]'s thread
  std::atomic<bool> ready_{false};
  std::mutex ip_mu_;  // accept-time only, never per command
  std::unordered_map<std::string, int64_t> sessions_per_ip_;
};

}  // namespace doorman::edge
