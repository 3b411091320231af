#include "directory/callout/callout.h"

#include <random>
#include <sstream>

#include "common/log.h"
#include "directory/metrics.h"
#include "directory/store/callout_cache.h"
#include "smtp/address.h"

namespace doorman::directory::callout {
namespace {

std::string random_hex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(kHex[rng() % 16]);
  return s;
}

std::string reply_line(const smtp::ParsedReply& r) {
  std::string s = std::to_string(r.code);
  if (!r.lines.empty()) s += " " + r.lines.back();
  return s.substr(0, 300);
}

Result classify(int code) {
  if (code / 100 == 2) return Result::kValid;
  if (code / 100 == 5) return Result::kUnknown;
  return Result::kBackendTempFail;
}

}  // namespace

const char* result_name(Result r) {
  switch (r) {
    case Result::kValid: return "valid";
    case Result::kUnknown: return "unknown";
    case Result::kCatchAll: return "catch-all";
    case Result::kBackendTempFail: return "backend-tempfail";
    case Result::kError: return "error";
    case Result::kPending: return "pending";
  }
  return "?";
}

struct Callout::Waiter {
  Done done;
  bool called = false;
};

struct Callout::Flight {
  std::string id;
  doorman::v1::Domain domain;
  std::string key;              // "" for a catch-all-only flight
  bool with_catch_all = false;  // also probe a random local part
  bool refresh = false;         // a due entry: skip if someone refreshed it already
  bool catch_all_only = false;  // refresh_catch_all: the domain's own lock
  std::string token;
  std::vector<std::shared_ptr<Waiter>> waiters;
  Clock::time_point poll_until{};
  Clock::time_point started{};
  Clock::time_point probe_started{};
};

// The lock and the cache entries a flight works on (store/callout_cache.h).
store::ProbeSubject Callout::subject_of(const Flight& f) { return {f.domain.name(), f.key, f.catch_all_only}; }

Callout::Callout(store::RedisPool& pool, Settings settings)
    : pool_(pool), settings_(settings), prober_(settings), token_prefix_(random_hex(16)) {}

Callout::~Callout() { stop(); }

void Callout::start() {
  timer_.start();
  prober_.start();
}

void Callout::stop() {
  prober_.stop();
  timer_.stop();
  std::map<std::string, std::shared_ptr<Flight>> flights;
  {
    std::lock_guard<std::mutex> lock(mu_);
    flights.swap(flights_);
  }
  for (auto& [id, f] : flights)
    for (auto& w : f->waiters) call(w, {Result::kPending, "stopping"});
}

void Callout::call(const std::shared_ptr<Waiter>& w, const Outcome& o) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (w->called) return;
    w->called = true;
  }
  w->done(o);
}

bool Callout::has_waiting(const std::shared_ptr<Flight>& f) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& w : f->waiters)
    if (!w->called) return true;
  return false;
}

void Callout::verify(const doorman::v1::Domain& domain, const std::string& key, bool with_catch_all_probe,
                     Clock::time_point wait_until, Done done) {
  auto w = std::make_shared<Waiter>();
  w->done = std::move(done);
  std::shared_ptr<Flight> f;
  bool is_new = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = flights_[domain.name() + "\n" + key];
    if (!slot) {
      slot = std::make_shared<Flight>();
      slot->id = domain.name() + "\n" + key;
      slot->domain = domain;
      slot->key = key;
      slot->with_catch_all = with_catch_all_probe;
      is_new = true;
    }
    f = slot;
    f->waiters.push_back(w);
    if (wait_until > f->poll_until) f->poll_until = wait_until;
  }
  timer_.at(wait_until, [this, w] { call(w, {Result::kPending, "wait budget spent"}); });
  if (is_new) start_flight(f);
}

void Callout::refresh(const doorman::v1::Domain& domain, const std::string& key) {
  std::shared_ptr<Flight> f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = flights_[domain.name() + "\n" + key];
    if (slot) return;  // a probe of it is running already
    slot = std::make_shared<Flight>();
    slot->id = domain.name() + "\n" + key;
    slot->domain = domain;
    slot->key = key;
    slot->refresh = true;
    f = slot;
  }
  start_flight(f);
}

void Callout::refresh_catch_all(const doorman::v1::Domain& domain) {
  std::shared_ptr<Flight> f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = flights_[domain.name() + "\n@catch-all"];
    if (slot) return;
    slot = std::make_shared<Flight>();
    slot->id = domain.name() + "\n@catch-all";
    slot->domain = domain;
    slot->with_catch_all = true;
    slot->refresh = true;
    slot->catch_all_only = true;
    f = slot;
  }
  start_flight(f);
}

void Callout::start_flight(const std::shared_ptr<Flight>& f) {
  f->started = Clock::now();
  f->token = token_prefix_ + "-" + std::to_string(++token_counter_);
  const int64_t lock_ms = (settings_.probe_timeout + std::chrono::seconds(5)).count();
  bool queued = pool_.submit([this, f, lock_ms](store::RedisConn& conn) {
    // Lock and re-read in one round trip: a probe that finished a moment ago
    // (after our caller read the cache) is not repeated.
    const store::ProbeSubject subject = subject_of(*f);
    store::ProbeClaim claim;
    Status s = store::claim_probe(conn, subject, f->token, lock_ms, &claim);
    if (!s.ok()) {
      finish(f, {Result::kError, "redis: " + s.message});
      return;
    }
    const bool acquired = claim.acquired;
    const std::optional<store::CacheEntry>& entry = claim.entry;
    const std::optional<store::CacheEntry>& domain_status = claim.catch_all;
    const int64_t now = store::unix_ms_now();
    if (entry && !f->key.empty()) {
      int64_t refresh = entry->result == "valid" ? settings_.positive_refresh.count() : settings_.negative_refresh.count();
      if (!f->refresh || now - entry->checked_ms < refresh) {
        if (acquired) (void)store::release_probe_claim(conn, subject, f->token);
        finish(f, {entry->result == "valid" ? Result::kValid : Result::kUnknown, "cached meanwhile"});
        return;
      }
    }
    if (f->key.empty() && domain_status && now - domain_status->checked_ms < settings_.catch_all_refresh.count()) {
      if (acquired) (void)store::release_probe_claim(conn, subject, f->token);
      finish(f, {Result::kPending, "catch-all status refreshed meanwhile"});
      return;
    }
    if (!f->key.empty() && !f->refresh && domain_status && domain_status->result == "catch-all") {
      if (acquired) (void)store::release_probe_claim(conn, subject, f->token);
      finish(f, {Result::kCatchAll, "catch-all meanwhile"});
      return;
    }
    if (acquired) {
      send_probe(f);
      return;
    }
    // Another replica probes it: wait for its answer while someone waits.
    if (has_waiting(f)) {
      timer_.at(Clock::now() + settings_.poll_interval, [this, f] { poll(f); });
    } else {
      finish(f, {Result::kPending, "probed by another replica"});
    }
  });
  if (!queued) finish(f, {Result::kError, "directory busy"});
}

void Callout::poll(const std::shared_ptr<Flight>& f) {
  if (!has_waiting(f) || Clock::now() > f->poll_until + settings_.poll_interval) {
    finish(f, {Result::kPending, "stopped waiting for another replica"});
    return;
  }
  bool queued = pool_.submit([this, f](store::RedisConn& conn) {
    store::ProbeProgress progress;
    Status s = store::read_probe_progress(conn, subject_of(*f), &progress);
    if (!s.ok()) {
      finish(f, {Result::kError, "redis: " + s.message});
      return;
    }
    if (const auto& e = progress.entry) {
      finish(f, {e->result == "valid" ? Result::kValid : Result::kUnknown, "answered for another replica"});
      return;
    }
    if (progress.catch_all && progress.catch_all->result == "catch-all") {
      finish(f, {Result::kCatchAll, "catch-all, found by another replica"});
      return;
    }
    if (!progress.claimed) {
      finish(f, {Result::kBackendTempFail, "another replica's probe was undecided"});
      return;
    }
    timer_.at(Clock::now() + settings_.poll_interval, [this, f] { poll(f); });
  });
  if (!queued) finish(f, {Result::kError, "directory busy"});
}

void Callout::send_probe(const std::shared_ptr<Flight>& f) {
  ProbeRequest req;
  req.routes.assign(f->domain.routes().begin(), f->domain.routes().end());
  req.sender = f->domain.callout_sender();
  if (f->with_catch_all) req.rcpts.push_back(smtp::Mailbox{"doorman-random-" + random_hex(12), f->domain.name()}.str());
  if (!f->key.empty()) req.rcpts.push_back(smtp::Mailbox{f->key, f->domain.name()}.str());
  req.deadline = Clock::now() + settings_.probe_timeout;
  f->probe_started = Clock::now();
  ++probes_sent_;
  bool queued = prober_.submit(std::move(req), [this, f](ProbeResponse r) { on_probe(f, r); });
  if (!queued) {
    ProbeResponse r;
    r.error = "probe queue full";
    on_probe(f, r);
  }
}

void Callout::on_probe(const std::shared_ptr<Flight>& f, const ProbeResponse& r) {
  // What the replies say.
  std::optional<store::CacheEntry> domain_status, address_entry;
  Outcome outcome{Result::kError, r.error};
  const int64_t now = store::unix_ms_now();
  if (r.kind == ProbeResponse::Kind::kAnswered) {
    size_t i = 0;
    if (f->with_catch_all) {
      const auto& random = r.replies[i++];
      Result rr = classify(random.code);
      if (rr != Result::kBackendTempFail) {
        store::CacheEntry e{rr == Result::kValid ? "catch-all" : "normal", now,
                            now + settings_.catch_all_ttl.count(), r.backend, reply_line(random)};
        domain_status = e;
      }
      outcome = {Result::kPending, "catch-all probe: " + reply_line(random)};
    }
    if (!f->key.empty()) {
      const auto& reply = r.replies[i];
      Result ar = classify(reply.code);
      outcome = {ar, reply_line(reply)};
      if (domain_status && domain_status->result == "catch-all") {
        outcome = {Result::kCatchAll, reply_line(reply)};
      } else if (ar == Result::kValid || ar == Result::kUnknown) {
        auto ttl = ar == Result::kValid ? settings_.positive_ttl : settings_.negative_ttl;
        address_entry = store::CacheEntry{ar == Result::kValid ? "valid" : "unknown", now, now + ttl.count(),
                                          r.backend, reply_line(reply)};
      }
    }
  }
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - f->started).count();
  // The probe's own result (the last RCPT: the address, else the random
  // one), for metrics.
  ProbeResult probe_result = r.timed_out ? ProbeResult::kTimeout : ProbeResult::kError;
  int last_code = 0;
  if (r.kind == ProbeResponse::Kind::kAnswered && !r.replies.empty()) {
    last_code = r.replies.back().code;
    probe_result = last_code / 100 == 2   ? ProbeResult::kValid
                   : last_code / 100 == 5 ? ProbeResult::kUnknown
                                          : ProbeResult::kTempfail;
  }
  directory_metrics().callout_probes(probe_result).inc();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (r.kind == ProbeResponse::Kind::kAnswered) {
      unreachable_.erase(f->domain.name());
    } else if (unreachable_.size() < 10000 || unreachable_.count(f->domain.name())) {
      unreachable_[f->domain.name()] = r.error.empty() ? "no answer" : r.error;
    }
  }
  directory_metrics().callout_probe_duration().observe(
      std::chrono::duration<double>(Clock::now() - f->probe_started).count());
  // Reply texts usually quote the address: they go to the debug line only.
  log::info("callout_probe").kv("domain", f->domain.name()).kv("backend", r.backend.empty() ? "-" : r.backend)
      .kv("result", f->key.empty() ? (domain_status ? domain_status->result : "undecided") : result_name(outcome.result))
      .kv("refresh", f->refresh).kv("ms", static_cast<int64_t>(elapsed)).kv("code", last_code)
      .kv("error", r.kind == ProbeResponse::Kind::kAnswered ? "-" : r.error);
  if (log::enabled(log::Level::kDebug) && !f->key.empty())
    log::debug("callout_probe_address").kv("address", smtp::Mailbox{f->key, f->domain.name()}.str())
        .kv("result", result_name(outcome.result)).kv("detail", outcome.detail);

  bool queued = pool_.submit([this, f, domain_status, address_entry, outcome](store::RedisConn& conn) {
    const std::string& name = f->domain.name();
    if (domain_status) {
      std::optional<store::CacheEntry> old;
      (void)store::read_catch_all_status(conn, name, &old);
      (void)store::write_catch_all_status(conn, name, *domain_status, settings_.catch_all_ttl.count());
      bool was = old && old->result == "catch-all";
      bool is = domain_status->result == "catch-all";
      if (is && !was) {
        log::warn("catch_all_detected").kv("domain", name).kv("backend", domain_status->backend)
            .kv("warning", "back-end accepts any address: unknown recipients will be accepted and bounced later");
      } else if (was && !is) {
        log::info("catch_all_cleared").kv("domain", name).kv("backend", domain_status->backend);
      }
    }
    if (address_entry) {
      auto ttl = address_entry->result == "valid" ? settings_.positive_ttl : settings_.negative_ttl;
      (void)store::write_address_result(conn, name, f->key, *address_entry, ttl.count());
    }
    (void)store::release_probe_claim(conn, subject_of(*f), f->token);
    finish(f, outcome);
  });
  if (!queued) finish(f, outcome);
}

void Callout::finish(const std::shared_ptr<Flight>& f, const Outcome& o) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = flights_.find(f->id);
    if (it != flights_.end() && it->second == f) flights_.erase(it);
    waiters = f->waiters;
  }
  for (auto& w : waiters) call(w, o);
}

std::string Callout::unreachable(const std::string& domain) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = unreachable_.find(domain);
  return it == unreachable_.end() ? "" : it->second;
}

}  // namespace doorman::directory::callout
