#include "directory/sync/syncer.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <set>

#include "common/log.h"
#include "common/metrics.h"
#include "directory/store/callout_cache.h"
#include "directory/store/normalise.h"
#include "directory/store/store.h"
#include "directory/sync/addresses.h"
#include "directory/sync/ldap_client.h"
#include "directory/sync/plan.h"

namespace doorman::directory::sync {
namespace {

namespace v1 = doorman::v1;
using Clock = std::chrono::steady_clock;

metrics::Gauge& source_gauge(const char* name, const char* help, const std::string& source) {
  return metrics::global().gauge(name, help, {{"source", source}});
}

void publish(const store::SyncState& state) {
  for (const auto& src : state.sources) {
    auto it = state.source_records.find(src.name());
    const v1::SyncRecord rec = it == state.source_records.end() ? v1::SyncRecord() : it->second;
    source_gauge("doorman_directory_sync_last_success_timestamp_seconds",
                 "Unix time of the last complete read of an LDAP source (0 = never), from Redis: the same on every "
                 "replica.",
                 src.name())
        .set(static_cast<double>(rec.last_success_unix_ms()) / 1000.0);
    source_gauge("doorman_directory_sync_entries",
                 "Addresses of its domains an LDAP source returned in its last complete read.", src.name())
        .set(static_cast<double>(rec.addresses()));
    source_gauge("doorman_directory_sync_held_back",
                 "1 while the last run of an LDAP source held back a change (empty result or a shrink beyond "
                 "max_shrink) of one of its domains; doormanctl sync status says why.",
                 src.name())
        .set(rec.held_back().empty() ? 0 : 1);
  }
}

metrics::Counter& runs_total() {
  return metrics::global().counter("doorman_directory_sync_runs_total",
                                   "LDAP sync runs made by this replica (one replica runs at a time).");
}
metrics::Counter& changes_total(const char* change) {
  return metrics::global().counter("doorman_directory_sync_changes_total",
                                   "Addresses added to or removed from lists by LDAP sync runs of this replica.",
                                   {{"change", change}});
}
metrics::Counter& failures_total(const std::string& source) {
  return metrics::global().counter("doorman_directory_sync_failures_total",
                                   "LDAP sync runs of this replica in which a source could not be read completely "
                                   "(its domains kept their lists).",
                                   {{"source", source}});
}

std::string default_replica() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

// First line of the bind password file, without a trailing CR or blanks.
Status read_password(const v1::LdapSource& s, std::string* out) {
  out->clear();
  if (s.bind_password_file().empty()) return Status::Ok();
  std::ifstream f(s.bind_password_file());
  if (!f || !std::getline(f, *out)) return Status::Unavailable("cannot read bind_password_file " + s.bind_password_file());
  while (!out->empty() && (out->back() == '\r' || out->back() == ' ' || out->back() == '\t')) out->pop_back();
  return Status::Ok();
}

}  // namespace

Syncer::Syncer(store::RedisConfig redis, SyncSettings settings) : conn_(std::move(redis)), settings_(std::move(settings)) {
  if (settings_.replica.empty()) settings_.replica = default_replica();
}

Syncer::~Syncer() { stop(); }

void Syncer::start() {
  runs_total();
  changes_total("added");
  changes_total("removed");
  thread_ = std::thread([this] { loop(); });
}

void Syncer::stop() {
  stop_requested_ = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Syncer::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    tick();
    lock.lock();
    cv_.wait_for(lock, settings_.poll, [this] { return stopping_; });
  }
}

void Syncer::tick() {
  if (!conn_.connected() && !conn_.connect().ok()) return;
  store::SyncState state;
  if (!store::read_sync_state(conn_, &state).ok()) return;
  publish(state);
  auto due = [this](const store::SyncState& st) {
    return !st.sources.empty() &&
           (st.last_periodic_ms == 0 || store::unix_ms_now() - st.last_periodic_ms >= settings_.interval.count());
  };
  if (!due(state) && state.requests.empty()) return;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const std::string token = settings_.replica + " " + std::to_string(rng());
  bool acquired = false;
  if (!store::acquire_sync_lease(conn_, token, settings_.lease, &acquired).ok() || !acquired) return;
  // Under the lease: another replica may have run just before.
  if (store::read_sync_state(conn_, &state).ok() && (due(state) || !state.requests.empty()))
    run(state, due(state), token);
  (void)store::release_sync_lease(conn_, token);
}

void Syncer::run(const store::SyncState& state, bool periodic, const std::string& token) {
  const int64_t started_ms = store::unix_ms_now();
  const auto started = Clock::now();
  runs_total().inc();
  // Domains to sync (-> forced) and the sources feeding each.
  std::map<std::string, bool> domains;
  std::map<std::string, std::vector<const v1::LdapSource*>> feeders;
  for (const auto& src : state.sources)
    for (const auto& d : src.domains()) {
      feeders[d].push_back(&src);
      if (periodic) domains.emplace(d, false);
    }
  for (const auto& [d, force] : state.requests) domains[d] = domains[d] || force;
  (void)store::take_sync_requests(conn_, state.requests);

  // Read each needed source once.
  struct Fetched {
    Status status;
    std::unique_ptr<AddressSet> set;
  };
  std::map<std::string, Fetched> fetched;
  std::vector<v1::SyncRecord> source_records;
  auto last_renewal = Clock::now();
  bool lease_held = true;
  auto keep_lease = [&]() {
    if (!lease_held) return false;
    if (Clock::now() - last_renewal < settings_.lease / 3) return true;
    bool held = false;
    if (!store::renew_sync_lease(conn_, token, settings_.lease, &held).ok() || !held) lease_held = false;
    last_renewal = Clock::now();
    return lease_held;
  };
  for (const auto& src : state.sources) {
    bool needed = false;
    for (const auto& d : src.domains()) needed = needed || domains.count(d);
    if (!needed) continue;
    const auto t0 = Clock::now();
    std::set<std::string> fed(src.domains().begin(), src.domains().end());
    Fetched f{Status::Ok(), std::make_unique<AddressSet>(fed)};
    std::string password;
    FetchStats stats;
    f.status = read_password(src, &password);
    if (f.status.ok())
      f.status = fetch_source(
          src, password, [&f](std::string_view a, std::string_view v) { f.set->add_value(a, v); },
          [&](const FetchStats& st) {
            log::debug("sync_page").kv("source", src.name()).kv("entries", st.entries).kv("pages", st.pages);
            return !stop_requested_ && !f.set->overflowed() && keep_lease();
          },
          &stats);
    if (f.set->overflowed())
      f.status = Status::Unavailable("more than " + std::to_string(kMaxAddressesPerSource) +
                                     " addresses: refused (base_dn or filter too wide?)");
    auto it = state.source_records.find(src.name());
    v1::SyncRecord rec;
    rec.set_name(src.name());
    if (it != state.source_records.end()) rec.set_last_success_unix_ms(it->second.last_success_unix_ms());
    rec.set_last_run_unix_ms(started_ms);
    rec.set_replica(settings_.replica);
    rec.set_entries(stats.entries);
    rec.set_duration_ms(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
    for (const auto& d : src.domains()) rec.add_related(d);
    if (f.status.ok()) {
      rec.set_last_success_unix_ms(store::unix_ms_now());
      rec.set_addresses(f.set->addresses());
      rec.set_ignored(f.set->ignored());
      log::info("sync_read").kv("source", src.name()).kv("entries", stats.entries).kv("pages", stats.pages)
          .kv("addresses", f.set->addresses()).kv("ignored", f.set->ignored()).kv("invalid", f.set->invalid())
          .kv("ms", rec.duration_ms());
    } else {
      if (it != state.source_records.end()) rec.set_addresses(it->second.addresses());
      rec.set_last_error(f.status.message);
      failures_total(src.name()).inc();
      log::warn("sync_read_failed").kv("source", src.name()).kv("error", f.status.message);
    }
    source_records.push_back(std::move(rec));
    fetched.emplace(src.name(), std::move(f));
  }

  // Apply per domain.
  std::vector<v1::SyncRecord> domain_records;
  for (const auto& [domain, force] : domains) {
    v1::SyncRecord rec;
    rec.set_name(domain);
    auto prev = state.domain_records.find(domain);
    if (prev != state.domain_records.end()) rec.set_last_success_unix_ms(prev->second.last_success_unix_ms());
    rec.set_last_run_unix_ms(started_ms);
    rec.set_replica(settings_.replica);
    const auto& sources = feeders[domain];
    for (const auto* s : sources) rec.add_related(s->name());
    std::string error;
    double max_shrink = 1.0;
    for (const auto* s : sources) {
      const Fetched& f = fetched.at(s->name());
      if (!f.status.ok()) error += (error.empty() ? "" : "; ") + ("source " + s->name() + ": " + f.status.message);
      max_shrink = std::min(max_shrink, s->max_shrink());
    }
    if (sources.empty()) error = "no source feeds this domain";
    v1::Domain config;
    std::unordered_set<std::string> live;
    if (error.empty()) {
      Status s = store::read_list(conn_, domain, &config, &live);
      if (!s.ok()) error = s.message;
    }
    if (error.empty() && !keep_lease()) error = "sync lease lost";
    if (!error.empty()) {
      rec.set_last_error(error + " (list unchanged)");
      if (prev != state.domain_records.end()) rec.set_addresses(prev->second.addresses());
      domain_records.push_back(std::move(rec));
      continue;
    }
    std::unordered_set<std::string> result;
    for (const auto* s : sources) {
      const auto& by_domain = fetched.at(s->name()).set->by_domain();
      if (auto it = by_domain.find(domain); it != by_domain.end())
        for (const auto& local : it->second) result.insert(store::normalise_local(local, config));
    }
    rec.set_entries(result.size());
    ListPlan plan = plan_list(live, result, max_shrink, force);
    rec.set_addresses(live.size());
    if (!plan.held_back.empty()) {
      rec.set_held_back(plan.held_back);
      rec.set_held_back_added(plan.add.size());
      rec.set_held_back_removed(plan.remove.size());
      log::warn("sync_held_back").kv("domain", domain).kv("why", plan.held_back);
    } else {
      bool applied = true;
      Status s = Status::Ok();
      // A first sync that finds nothing keeps the domain deferring unknown recipients.
      const bool clear_pending = config.ldap_sync_pending() && (!result.empty() || force);
      if (!plan.add.empty() || !plan.remove.empty() || clear_pending)
        s = store::apply_list_diff(conn_, domain, plan.add, plan.remove, token, clear_pending, &applied);
      // As every admin write: wait for one replica where there are replicas (Sentinel, issue #15). A change
      // no replica confirmed is still applied; if a failover loses it, the next run applies it again.
      if (s.ok() && applied && (!plan.add.empty() || !plan.remove.empty())) {
        if (Status w = store::confirm_replicated(conn_); !w.ok())
          log::warn("sync_not_replicated").kv("domain", domain).kv("error", w.message);
      }
      if (!s.ok() || !applied) {
        rec.set_last_error((s.ok() ? std::string("sync lease lost") : s.message) + " (list unchanged)");
      } else {
        rec.set_added(plan.add.size());
        rec.set_removed(plan.remove.size());
        rec.set_addresses(live.size() + plan.add.size() - plan.remove.size());
        rec.set_last_success_unix_ms(store::unix_ms_now());
        // Which sources this list now comes from: the decision log names them (source_name).
        std::vector<std::string> names;
        for (const auto* src : sources) names.push_back(src->name());
        if (Status w = store::record_domain_sources(conn_, domain, names); !w.ok())
          log::warn("sync_sources_not_recorded").kv("domain", domain).kv("error", w.message);
        changes_total("added").inc(plan.add.size());
        changes_total("removed").inc(plan.remove.size());
        log::info("sync_applied").kv("domain", domain).kv("added", plan.add.size()).kv("removed", plan.remove.size())
            .kv("addresses", rec.addresses()).kv("forced", force);
      }
    }
    domain_records.push_back(std::move(rec));
  }

  // Each source's record sums what happened to its domains in this run.
  for (auto& rec : source_records) {
    for (const auto& d : domain_records) {
      bool related = false;
      for (const auto& r : d.related()) related = related || r == rec.name();
      if (!related) continue;
      rec.set_added(rec.added() + d.added());
      rec.set_removed(rec.removed() + d.removed());
      rec.set_held_back_added(rec.held_back_added() + d.held_back_added());
      rec.set_held_back_removed(rec.held_back_removed() + d.held_back_removed());
      if (!d.held_back().empty())
        rec.set_held_back(rec.held_back() + (rec.held_back().empty() ? "" : "; ") + d.name() + ": " + d.held_back());
    }
  }
  Status s = store::write_sync_records(conn_, source_records, domain_records, periodic, started_ms);
  if (!s.ok()) log::warn("sync_records_not_written").kv("error", s.message);
  log::info("sync_run").kv("periodic", periodic).kv("sources", source_records.size())
      .kv("domains", domain_records.size())
      .kv("ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
}

}  // namespace doorman::directory::sync
