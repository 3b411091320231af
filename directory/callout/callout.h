// The callout engine: verifies recipients by asking their back-end (an RCPT
// probe) and remembers the answers in Redis for every directory replica.
//
//   verify()   a recipient that is not cached: join or start the probe of
//              that address (single flight), and call `done` with its
//              outcome, or with kPending when `wait_until` passes first (the
//              probe then finishes in the background and fills the cache).
//   refresh()  a cached result that is due: one background probe; only a
//              decisive answer (2xx/5xx) is written, so a failed refresh
//              never overwrites a good result.
//   refresh_catch_all()  the domain's random-address probe, in the
//              background.
//
// Single flight: within this replica, concurrent requests for one address
// share one flight; across replicas, the flight first takes a Redis lock
// (store::claim_probe, expiry = probe timeout + 5 s) and re-reads the cache
// in the same round trip (a probe that finished a moment ago is not
// repeated). A replica that does not get the lock polls the cache
// (store::read_probe_progress) every poll_interval while someone still
// waits; Redis itself is spoken in store/callout_cache.h. The first probe of
// a domain whose catch-all status is unknown also asks for a random local
// part, in the same session and transaction (Exim's "random" option): if the
// back-end accepts it, the domain is a catch-all, which is recorded (and
// logged once per change) and the address's own answer is not cached.
//
// Outcomes: 2xx -> kValid, 5xx -> kUnknown, 4xx -> kBackendTempFail,
// connection errors/timeouts/limits -> kError; only the first two are
// cached. Threads: Redis work runs on the RedisPool, probes on the Prober's
// threads, deadlines on one Timer thread; nothing here blocks a caller.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "directory/callout/prober.h"
#include "directory/callout/settings.h"
#include "directory/callout/timer.h"
#include "directory/store/callout_cache.h"
#include "directory/store/pool.h"
#include "doorman/v1/admin.pb.h"

namespace doorman::directory::callout {

enum class Result { kValid, kUnknown, kCatchAll, kBackendTempFail, kError, kPending };
const char* result_name(Result r);

struct Outcome {
  Result result = Result::kPending;
  std::string detail;  // for logs: the back-end's reply or the error
};

class Callout {
 public:
  using Clock = std::chrono::steady_clock;
  using Done = std::function<void(const Outcome&)>;

  Callout(store::RedisPool& pool, Settings settings);
  ~Callout();
  Callout(const Callout&) = delete;
  Callout& operator=(const Callout&) = delete;

  void start();
  void stop();
  const Settings& settings() const { return settings_; }

  // `key` is the normalised local part (store/normalise.h). `done` is called
  // exactly once, from any thread.
  void verify(const doorman::v1::Domain& domain, const std::string& key, bool with_catch_all_probe,
              Clock::time_point wait_until, Done done);
  void refresh(const doorman::v1::Domain& domain, const std::string& key);
  void refresh_catch_all(const doorman::v1::Domain& domain);

  // Probes this replica sent to back-ends (for tests and metrics).
  uint64_t probes_sent() const { return probes_sent_.load(); }

  // The error of the last probe of `domain` from this replica when it got no
  // answer from any back-end (connection refused, timeout, TLS failure);
  // "" once a back-end answered again. In memory, per replica: the admin
  // API's rejection verdict (service/rejection.h) uses it.
  std::string unreachable(const std::string& domain);

 private:
  struct Waiter;
  struct Flight;
  static store::ProbeSubject subject_of(const Flight& f);
  void start_flight(const std::shared_ptr<Flight>& f);
  void send_probe(const std::shared_ptr<Flight>& f);
  void on_probe(const std::shared_ptr<Flight>& f, const ProbeResponse& r);
  void poll(const std::shared_ptr<Flight>& f);
  void finish(const std::shared_ptr<Flight>& f, const Outcome& o);
  void call(const std::shared_ptr<Waiter>& w, const Outcome& o);
  bool has_waiting(const std::shared_ptr<Flight>& f);

  store::RedisPool& pool_;
  Settings settings_;
  Prober prober_;
  Timer timer_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;
  std::map<std::string, std::string> unreachable_;  // domain -> last probe error (under mu_)
  std::atomic<uint64_t> probes_sent_{0};
  std::string token_prefix_;
  std::atomic<uint64_t> token_counter_{0};
};

}  // namespace doorman::directory::callout
