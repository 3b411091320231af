// The probe thread pool: runs RCPT probes against back-ends, with pooled
// sessions and per-back-end limits, so Doorman can never flood the server
// it protects.
//
// submit() queues a probe (bounded queue) and returns at once; one of
// Settings::threads probe threads runs it on blocking sockets
// (probe_session.h) and calls `done` with the replies. gRPC and Redis
// threads never block on a back-end.
//
// A probe is: the routes of a domain in priority order; per route
// (back-end "host:port"): take a session slot (at most `concurrency` per
// back-end), reuse an idle session or open one (connect error -> the next
// route: failover), wait for tokens of the back-end's token bucket (`rate`
// RCPTs per second, `burst`; one token per RCPT), then MAIL FROM:<sender>,
// one RCPT TO per address, RSET, and the session goes back to the pool
// (QUIT after `session_probes` probes, or when idle for `idle_timeout`). A
// pooled session that turns out to be dead is replaced once. A probe that
// cannot finish before its deadline (queueing, limits, timeouts included)
// reports kFailed: undecided. A probe that has to wait for a token counts
// once in doorman_directory_callout_rate_limited_total.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "directory/callout/probe_session.h"
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
  // QUITs pooled sessions; queued probes finish with kFailed.
  void stop();
  // False (and `done` is not called) when the queue is full or stopping.
  bool submit(ProbeRequest req, Done done);

 private:
  struct Backend {
    int in_use = 0;
    std::vector<std::unique_ptr<ProbeSession>> idle;
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
  };
  struct Job {
    ProbeRequest req;
    Done done;
  };

  void worker();
  void housekeeping();
  ProbeResponse run(const ProbeRequest& req);
  // Tries one route; false = try the next route (connect failure).
  bool run_route(const ProbeRequest& req, const std::string& route, ProbeResponse* out);
  bool acquire_slot(const std::string& route, std::chrono::steady_clock::time_point deadline);
  void release_slot(const std::string& route, std::unique_ptr<ProbeSession> session);
  bool acquire_tokens(const std::string& route, int n, std::chrono::steady_clock::time_point deadline);
  std::unique_ptr<ProbeSession> take_idle(const std::string& route);

  Settings settings_;
  std::mutex mu_;
  std::condition_variable cv_;        // queue
  std::condition_variable limit_cv_;  // slots and tokens
  std::condition_variable house_cv_;  // housekeeping: stop
  std::deque<Job> queue_;
  std::map<std::string, Backend> backends_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::thread housekeeper_;
};

}  // namespace doorman::directory::callout
