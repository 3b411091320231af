// The prober: runs RCPT probes against back-ends, with pooled sessions and
// per-back-end limits, so Doorman can never flood the server it protects.
//
// submit() queues a probe (bounded: at most 10,000 in flight) and returns at
// once; the probe runs on the prober's own event loop (one thread, Asio)
// with the shared SMTP client (smtp/client.h through
// common/smtp_client_connection.h), and `done` is called there with the
// replies. gRPC and Redis threads never block on a back-end; `done` must not
// block either.
//
// A probe is: the routes of a domain in priority order; per route
// (back-end "host:port"): take a session slot (at most `concurrency` per
// back-end, first come first served), reuse an idle session or open one
// (connect error -> the next route: failover), wait for tokens of the
// back-end's token bucket (`rate` RCPTs per second, `burst`; one token per
// RCPT), then MAIL FROM:<sender>, the RCPTs (pipelined when the back-end
// offers PIPELINING), RSET, and the session goes back to the pool (QUIT
// after `session_probes` probes, or when idle for `idle_timeout`). A pooled
// session that turns out to be dead is replaced once. A probe that cannot
// finish before its deadline (queueing, limits, timeouts included) reports
// kFailed: undecided. A probe that has to wait for a token counts once in
// doorman_directory_callout_rate_limited_total.
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/smtp_client_connection.h"
#include "directory/callout/settings.h"

namespace doorman::directory::callout {

struct ProbeRequest {
  std::vector<std::string> routes;  // "host:port", priority order
  std::string sender;               // "" = <>
  std::vector<std::string> rcpts;   // mailboxes, in one transaction
  std::chrono::steady_clock::time_point deadline;
};

struct ProbeResponse {
  // kAnswered: `replies` has one reply per RCPT (any code). kFailed: no
  // usable answer (all routes failed, MAIL refused, timeouts, limits,
  // queue full); `error` says why.
  enum class Kind { kAnswered, kFailed } kind = Kind::kFailed;
  std::vector<smtp::ParsedReply> replies;
  std::string backend;  // the route that answered
  std::string error;
  // kFailed because time ran out (a command or connect timeout, the
  // deadline, no session slot or rate-limit token in time): for metrics.
  bool timed_out = false;
};

class Prober {
 public:
  using Done = std::function<void(ProbeResponse)>;

  explicit Prober(Settings settings);
  ~Prober();
  Prober(const Prober&) = delete;
  Prober& operator=(const Prober&) = delete;

  void start();
  // Probes in flight finish with kFailed ("stopping"); pooled sessions QUIT.
  void stop();
  // False (and `done` is not called) when too many probes are in flight or
  // the prober is not running.
  bool submit(ProbeRequest req, Done done);

 private:
  struct Probe;
  using ProbePtr = std::shared_ptr<Probe>;
  struct Backend {
    int in_use = 0;
    std::deque<ProbePtr> waiting;  // for a session slot
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
  };

  // The steps of a probe, in order; each runs on the event loop.
  void try_route(const ProbePtr& p);
  void with_session(const ProbePtr& p);
  void open_session(const ProbePtr& p);
  void with_tokens(const ProbePtr& p);
  void mail(const ProbePtr& p);
  void rcpts(const ProbePtr& p);
  // The route failed at connection level: the next one.
  void next_route(const ProbePtr& p);
  // Gives back p's slot; its session goes to the pool with `keep_session`
  // (when usable), else it is closed.
  void release_slot(const ProbePtr& p, bool keep_session);
  // RSET, then the session back to the pool (or closed), then finish.
  void reset_and_finish(const ProbePtr& p);
  void finish(const ProbePtr& p);
  void abandon_all();  // stop(), on the event loop
  void housekeeping();
  std::chrono::milliseconds left(const ProbePtr& p) const;

  Settings settings_;
  SmtpClientTls tls_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  boost::asio::steady_timer housekeeping_timer_;
  std::thread thread_;
  std::atomic<bool> running_{false};
  std::atomic<size_t> in_flight_{0};
  // Touched on the event loop only.
  std::map<std::string, Backend> backends_;
  SmtpClientPool idle_;
  std::set<ProbePtr> active_;
  bool stopping_ = false;
};

}  // namespace doorman::directory::callout
