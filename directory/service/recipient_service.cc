#include "directory/service/recipient_service.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "common/log.h"
#include "directory/checks/checks.h"
#include "directory/metrics.h"
#include "directory/store/store.h"

namespace doorman::directory::service {

namespace v1 = doorman::v1;

checks::CalloutAges callout_ages(const callout::Callout* callout) {
  checks::CalloutAges a;
  if (!callout) return a;
  a.positive_refresh_ms = callout->settings().positive_refresh.count();
  a.negative_refresh_ms = callout->settings().negative_refresh.count();
  a.catch_all_refresh_ms = callout->settings().catch_all_refresh.count();
  return a;
}

void check_group(store::RedisConn* conn, const std::vector<std::string>& recipients,
                 std::vector<v1::Verdict>* verdicts, std::vector<std::vector<std::string>>* steps,
                 const std::string& error, const checks::CalloutAges& ages, std::vector<checks::Facts>* facts,
                 std::vector<checks::CalloutPlan>* plans, const store::HarvestQuery* harvest,
                 std::optional<store::HarvestCounts>* harvest_counts, const std::string& postmaster_domain,
                 const Prefetch* prefetch) {
  // A bare "postmaster" is postmaster@D (recipient_service.h).
  std::vector<std::string> resolved(recipients);
  std::vector<bool> bare(recipients.size(), false);
  std::string pm_domain = postmaster_domain;
  std::string pm_how = "--postmaster-domain";
  Status pm_lookup = Status::Ok();
  for (size_t i = 0; i < recipients.size(); ++i) bare[i] = smtp::ascii_lower(recipients[i]) == "postmaster";
  if (std::find(bare.begin(), bare.end(), true) != bare.end()) {
    if (pm_domain.empty()) {
      pm_how = "the first guarded domain in sorted order";
      pm_lookup = conn ? store::first_domain(*conn, &pm_domain)
                       : Status::Unavailable(error.empty() ? "no connection" : error);
    }
    for (size_t i = 0; i < recipients.size(); ++i)
      if (bare[i] && !pm_domain.empty()) resolved[i] = recipients[i] + "@" + pm_domain;
  }
  std::vector<smtp::Mailbox> mailboxes;
  for (const auto& r : resolved) {
    smtp::PathResult p = smtp::parse_mailbox(r);
    if (p.ok()) mailboxes.push_back(p.mailbox);
  }
  store::GroupFacts own;
  const store::GroupFacts* group = &own;
  Status lookup = Status::Unavailable(error.empty() ? "no connection" : error);
  // A bare postmaster's domain is only known here: such a group does its own lookup.
  if (prefetch && prefetch->facts && std::find(bare.begin(), bare.end(), true) == bare.end()) {
    group = prefetch->facts;
    lookup = prefetch->lookup;
    if (harvest && harvest_counts) {
      harvest_counts->reset();
      store::HarvestCounts c;
      if (prefetch->counts_current) *harvest_counts = prefetch->counts;
      else if (conn && store::read_harvest(*conn, *harvest, &c).ok()) *harvest_counts = c;
    }
  } else if (conn) {
    lookup = mailboxes.empty() && !harvest ? Status::Ok()
                                           : store::fetch_group(*conn, mailboxes, &own, harvest, harvest_counts);
  }
  for (size_t i = 0; i < resolved.size(); ++i) {
    checks::Facts f = checks::make_facts(resolved[i], *group, lookup, ages);
    checks::Evaluation e = checks::evaluate(f, /*explain=*/steps != nullptr);
    if (bare[i]) {
      if (!pm_domain.empty()) {
        e.steps.insert(e.steps.begin(), "postmaster: bare <" + recipients[i] + "> is " + resolved[i] + " (D = " +
                                            pm_how + ")");
      } else if (!pm_lookup.ok()) {
        e.verdict = checks::temporary_failure(f, "bare postmaster: " + pm_lookup.message);
        e.steps = {"postmaster: bare <" + recipients[i] + ">: the guarded domains could not be read (" +
                   pm_lookup.message + ") -> defer"};
      } else {
        e.verdict = checks::not_configured(f, "bare postmaster: no guarded domain (set --postmaster-domain)");
        e.steps = {"postmaster: bare <" + recipients[i] + ">: no --postmaster-domain and no guarded domain -> defer"};
      }
      if (steps == nullptr) e.steps.clear();
    }
    verdicts->push_back(std::move(e.verdict));
    if (steps) steps->push_back(std::move(e.steps));
    if (plans) plans->push_back(std::move(e.callout));
    if (facts) facts->push_back(std::move(f));
  }
}

v1::Verdict callout_verdict(const checks::Facts& f, const callout::Outcome& o) {
  using callout::Result;
  const std::string who = checks::bracketed(f);
  switch (o.result) {
    case Result::kValid:
      return checks::make_accept(f, "callout: valid (" + o.detail + ")", v1::SOURCE_PROBE, v1::REASON_CALLOUT_VALID);
    case Result::kUnknown:
      // Shadow mode lets it through (checks/shadow.cc), as it does a cached
      // unknown.
      return checks::apply_shadow(
          f,
          checks::make_verdict(v1::DECISION_REJECT, 550, "5.1.1", who + ": Recipient address rejected: User unknown",
                               "callout: unknown (" + o.detail + ")", v1::SOURCE_PROBE, v1::REASON_CALLOUT_UNKNOWN),
          nullptr);
    case Result::kCatchAll:
      if (f.config && f.config->catch_all_policy() == v1::CATCH_ALL_POLICY_DEFER) {
        auto v = checks::temporary_failure(f, "callout: catch-all back-end, policy defer");
        v.set_source(v1::SOURCE_POLICY);
        v.set_reason_code(v1::REASON_CATCH_ALL);
        return v;
      }
      return checks::make_accept(f, "callout: catch-all back-end, policy accept", v1::SOURCE_POLICY,
                                 v1::REASON_CATCH_ALL);
    case Result::kBackendTempFail:
      return checks::make_verdict(v1::DECISION_DEFER, 450, "4.1.1",
                                  who + ": Recipient address rejected: unverified address, try again later",
                                  "callout: back-end deferred (" + o.detail + ")", v1::SOURCE_PROBE,
                                  v1::REASON_CALLOUT_TEMPFAIL);
    case Result::kError: {
      auto v = checks::temporary_failure(f, "callout: " + o.detail);
      return v;
    }
    case Result::kPending:
      break;
  }
  return checks::make_verdict(v1::DECISION_DEFER, 450, "4.1.1", who + ": Recipient address verification in progress",
                              "callout: " + o.detail, v1::SOURCE_PROBE, v1::REASON_CALLOUT_PENDING);
}

namespace {

Decision metric_decision(v1::Decision d) {
  switch (d) {
    case v1::DECISION_ACCEPT: return Decision::kAccept;
    case v1::DECISION_REJECT: return Decision::kReject;
    default: return Decision::kDefer;
  }
}

Source metric_source(v1::Source s) {
  switch (s) {
    case v1::SOURCE_LIST: return Source::kList;
    case v1::SOURCE_CACHE: return Source::kCache;
    case v1::SOURCE_PROBE: return Source::kProbe;
    case v1::SOURCE_POLICY: return Source::kPolicy;
    case v1::SOURCE_LIMIT: return Source::kLimit;
    default: return Source::kError;  // SOURCE_ERROR; UNSPECIFIED is a bug, counted as our trouble
  }
}

// One CheckRecipients call waiting for callout answers.
struct Pending {
  std::mutex mu;
  int outstanding = 0;
  std::vector<v1::Verdict> verdicts;
};

}  // namespace

RecipientService::Work RecipientService::check_work(const v1::CheckRecipientsRequest* req,
                                                    v1::CheckRecipientsResponse* resp,
                                                    std::chrono::system_clock::time_point deadline,
                                                    int64_t now_ms, Finish finish, bool record_inline,
                                                    std::function<void()> ask_alone) {
  const auto started = std::chrono::steady_clock::now();
  // The caller's deadline (time_point::max() without one): work for a caller
  // that has gone is dropped.
  auto expired = [deadline] { return std::chrono::system_clock::now() >= deadline; };
  std::shared_ptr<harvest::Harvest> harvest = harvest_;
  const std::string ip = harvest ? harvest->usable_ip(req->session().client_ip()) : "";
  store::RedisPool* pool = &pool_;
  // `conn`: the worker's connection while the job runs (null from a callout
  // answer): with record_inline the harvest count is written on it before
  // the job goes on to the next check of its batch (CheckBatch).
  auto respond = [req, resp, finish, started, harvest, ip, now_ms, pool, expired, record_inline](
                     std::vector<v1::Verdict>& verdicts, CheckResult result, const harvest::State& hs,
                     store::RedisConn* job_conn) {
    DirectoryMetrics& m = directory_metrics();
    // An expired caller never sees these verdicts: nothing was revealed, so
    // nothing is counted.
    if (!ip.empty() && !harvest->deferred(hs) && !expired()) {
      // In call order: past a threshold, the rest of this call is tarpitted
      // or deferred too (harvest.h).
      std::vector<std::string> rcpts(req->recipients().begin(), req->recipients().end());
      harvest::CallOutcome o = harvest->apply_to_call(hs, rcpts, &verdicts);
      m.harvest_actions(HarvestAction::kTarpit).inc(o.tarpitted);
      m.harvest_actions(HarvestAction::kDefer).inc(o.deferred);
      if (record_inline && job_conn) harvest->record_on(job_conn, ip, hs, o.unknown, now_ms);
      else harvest->record(*pool, ip, hs, o.unknown, now_ms);
    }
    int accepted = 0, rejected = 0, deferred = 0, would_reject = 0;
    // Shadow mode: would-be refusals per domain, for the domain's count.
    std::map<std::string, uint64_t> shadowed;
    for (size_t i = 0; i < verdicts.size(); ++i) {
      auto& v = verdicts[i];
      if (v.has_would_reject()) {
        m.recipients(Decision::kWouldReject, metric_source(v.source())).inc();
        ++would_reject;
        ++shadowed[v.domain()];
      } else {
        m.recipients(metric_decision(v.decision()), metric_source(v.source())).inc();
      }
      if (v.decision() == v1::DECISION_ACCEPT) ++accepted;
      else if (v.decision() == v1::DECISION_REJECT) ++rejected;
      else ++deferred;
      if (log::enabled(log::Level::kDebug))
        log::debug("verdict").kv("session", req->session().session_id()).kv("rcpt", req->recipients(static_cast<int>(i)))
            .kv("code", v.code()).kv("reason", v.reason());
      *resp->add_verdicts() = std::move(v);  // the last use of `verdicts`
    }
    log::info("check").kv("session", req->session().session_id()).kv("recipients", verdicts.size())
        .kv("accepted", accepted).kv("rejected", rejected).kv("deferred", deferred).kv("would_reject", would_reject);
    // One pipelined job for the call, after the reply (as the harvest
    // count); an expired caller saw nothing, so nothing is counted.
    if (!shadowed.empty() && !expired()) {
      const bool queued = pool->submit([shadowed = std::move(shadowed)](store::RedisConn& conn) {
        Status s = store::count_would_reject(conn, shadowed);
        if (!s.ok()) log::warn("shadow_count_failed").kv("error", s.message);
      });
      // The count is a report, not a verdict: a busy pool loses it, visibly.
      if (!queued) log::warn("shadow_count_failed").kv("error", "directory busy").kv("would_reject", would_reject);
    }
    m.check_requests(result).inc();
    m.check_duration().observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    finish(grpc::Status::OK);
  };
  callout::Callout* engine = callout_;
  std::shared_ptr<StoreState> store_state = store_state_;
  const std::string postmaster_domain = postmaster_domain_;
  return [req, respond, engine, started, harvest, ip, now_ms, finish, expired, store_state, postmaster_domain, ask_alone](
             store::RedisConn* conn, const std::string& error, const Prefetch* prefetch) {
    DirectoryMetrics& m = directory_metrics();
    if (expired()) {
      // Queued past the caller's deadline: no Redis work, no probe.
      m.expired_jobs(JobKind::kCheck).inc();
      finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed before the lookup"));
      return;
    }
    std::vector<std::string> rcpts(req->recipients().begin(), req->recipients().end());
    std::vector<v1::Verdict> verdicts;
    std::vector<checks::Facts> facts;
    std::vector<checks::CalloutPlan> plans;
    std::optional<store::HarvestQuery> query;
    std::optional<store::HarvestCounts> counts;
    if (!ip.empty()) query = harvest->query(ip, now_ms);
    check_group(conn, rcpts, &verdicts, nullptr, error, callout_ages(engine), &facts, &plans,
                query ? &*query : nullptr, &counts, postmaster_domain, prefetch);
    CheckResult result = CheckResult::kOk;
    bool marker_missing = false, marker_seen = false;
    for (const auto& f : facts) {
      if (f.lookup.code == Code::kFailedPrecondition) marker_missing = true;
      else if (f.lookup.ok() && f.parsed.ok()) marker_seen = true;  // a lookup ran and found the marker
      if (!f.lookup.ok()) result = marker_missing ? CheckResult::kNotConfigured : CheckResult::kRedisError;
    }
    if (store_state && (marker_missing || marker_seen)) store_state->observe(!marker_missing);
    harvest::State hs;
    if (!ip.empty()) {
      hs = harvest->parse(ip, counts ? &*counts : nullptr, now_ms);
      if (harvest->deferred(hs)) {
        // No check result is used and no probe starts for a deferred IP.
        for (size_t i = 0; i < verdicts.size(); ++i) {
          verdicts[i] = harvest::defer_verdict(rcpts[i]);
          m.harvest_actions(HarvestAction::kDefer).inc();
        }
        respond(verdicts, result, hs, conn);
        return;
      }
    }
    if (expired()) {
      // The lookup outlived the caller: start no probe, write no count.
      m.expired_jobs(JobKind::kCheck).inc();
      finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed during the lookup"));
      return;
    }
    // In a batch, a check that needs a live probe is asked again alone (CheckBatchResult.ask_alone): before any
    // count, metric or refresh, so the repeated check is counted once.
    if (engine && ask_alone &&
        std::any_of(plans.begin(), plans.end(), [](const checks::CalloutPlan& p) { return p.applies && p.probe; })) {
      ask_alone();
      return;
    }
    for (const auto& p : plans) {
      if (!p.applies) continue;
      m.callout_cache(p.probe ? CacheResult::kMiss : p.refresh ? CacheResult::kRefresh : CacheResult::kHit).inc();
    }
    if (!engine) {
      respond(verdicts, result, hs, conn);
      return;
    }
    auto pending = std::make_shared<Pending>();
    pending->verdicts = std::move(verdicts);
    std::vector<size_t> to_probe;
    std::set<std::string> domain_probes;
    for (size_t i = 0; i < plans.size(); ++i) {
      const auto& p = plans[i];
      if (!p.applies) continue;
      if (p.probe) to_probe.push_back(i);
      else if (p.refresh) engine->refresh(*facts[i].config, p.key);
      // The first probe of an address carries the random probe when the
      // domain's status is unknown; otherwise refresh the status alone.
      if (p.domain_probe && !(p.probe && !facts[i].catch_all)) {
        if (domain_probes.insert(facts[i].domain).second) engine->refresh_catch_all(*facts[i].config);
      }
    }
    if (to_probe.empty()) {
      respond(pending->verdicts, result, hs, conn);
      return;
    }
    pending->outstanding = static_cast<int>(to_probe.size());
    const auto wait_until = started + engine->settings().wait_budget;
    std::set<std::string> random_probe_sent;
    for (size_t i : to_probe) {
      const checks::Facts& f = facts[i];
      bool with_random = !f.catch_all && random_probe_sent.insert(f.domain).second;
      engine->verify(*f.config, plans[i].key, with_random, wait_until,
                     [pending, i, f, respond, result, hs](const callout::Outcome& o) {
                       bool last = false;
                       {
                         std::lock_guard<std::mutex> lock(pending->mu);
                         pending->verdicts[i] = callout_verdict(f, o);
                         last = --pending->outstanding == 0;
                       }
                       if (last) respond(pending->verdicts, result, hs, nullptr);
                     });
    }
  };
}

grpc::ServerUnaryReactor* RecipientService::CheckRecipients(grpc::CallbackServerContext* ctx,
                                                            const v1::CheckRecipientsRequest* req,
                                                            v1::CheckRecipientsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (req->recipients_size() > kMaxRecipients) {
    directory_metrics().check_requests(CheckResult::kInvalid).inc();
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "at most " + std::to_string(kMaxRecipients) + " recipients per call"));
    return reactor;
  }
  Work work = check_work(req, resp, ctx->deadline(), harvest::now_ms(),
                         [reactor](grpc::Status s) { reactor->Finish(s); }, false);
  if (!pool_.submit([work](store::RedisConn& conn) { work(&conn, "", nullptr); })) work(nullptr, "directory busy", nullptr);
  return reactor;
}

grpc::ServerUnaryReactor* RecipientService::CheckBatch(grpc::CallbackServerContext* ctx,
                                                       const v1::CheckBatchRequest* req, v1::CheckBatchResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  DirectoryMetrics& m = directory_metrics();
  if (req->checks_size() > kMaxBatchChecks) {
    m.check_requests(CheckResult::kInvalid).inc();
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "at most " + std::to_string(kMaxBatchChecks) + " checks per batch"));
    return reactor;
  }
  m.batch_checks().observe(static_cast<double>(req->checks_size()));
  const int n = req->checks_size();
  for (int i = 0; i < n; ++i) resp->add_results();  // pointers into `results` stay valid from here on
  // Every check finishes once (possibly on a callout thread); the last one finishes the RPC.
  auto outstanding = std::make_shared<std::atomic<int>>(n + 1);
  auto finish_one = [reactor, outstanding] {
    if (outstanding->fetch_sub(1) == 1) reactor->Finish(grpc::Status::OK);
  };
  // A check's harvest count is written before the next check of the same client (identity) in this batch is
  // looked up, on the same connection: the batch counts exactly as the same calls in a row would.
  std::vector<std::string> ips(static_cast<size_t>(n));
  if (harvest_)
    for (int i = 0; i < n; ++i) ips[static_cast<size_t>(i)] = harvest_->usable_ip(req->checks(i).session().client_ip());
  const int64_t now_ms = harvest::now_ms();
  struct Job {
    Work work;
    const v1::CheckRecipientsRequest* check;
    std::string ip;
    bool first_of_ip;  // no earlier check of this batch has its client: the prefetched counts are current
  };
  auto jobs = std::make_shared<std::vector<Job>>();
  for (int i = 0; i < n; ++i) {
    const v1::CheckRecipientsRequest& check = req->checks(i);
    v1::CheckBatchResult* result = resp->mutable_results(i);
    if (check.recipients_size() > kMaxRecipients) {
      m.check_requests(CheckResult::kInvalid).inc();
      result->set_status_code(grpc::StatusCode::INVALID_ARGUMENT);
      result->set_status_message("at most " + std::to_string(kMaxRecipients) + " recipients per call");
      finish_one();
      continue;
    }
    const std::string& ip = ips[static_cast<size_t>(i)];
    const bool seen_later = !ip.empty() && std::find(ips.begin() + i + 1, ips.end(), ip) != ips.end();
    const bool first_of_ip = ip.empty() || std::find(ips.begin(), ips.begin() + i, ip) == ips.begin() + i;
    jobs->push_back({check_work(&check, result->mutable_response(), ctx->deadline(), now_ms,
                                [result, finish_one](grpc::Status s) {
                                  result->set_status_code(s.error_code());
                                  if (!s.ok()) result->set_status_message(s.error_message());
                                  finish_one();
                                },
                                seen_later,
                                [result, finish_one] {
                                  directory_metrics().batch_asked_alone().inc();
                                  result->set_ask_alone(true);
                                  finish_one();
                                }),
                     &check, ip, first_of_ip});
  }
  // One pool job: one round trip fetches the facts of every check (and each client's harvest counts), then the
  // checks run in order on them.
  std::shared_ptr<harvest::Harvest> harvest = harvest_;
  auto run = [jobs, harvest, now_ms](store::RedisConn* conn, const std::string& error) {
    std::vector<Prefetch> pre(jobs->size());
    store::GroupFacts facts;
    if (conn) {
      std::vector<smtp::Mailbox> mailboxes;
      std::vector<store::HarvestQuery> queries;
      std::vector<size_t> query_of(jobs->size(), SIZE_MAX);
      for (size_t j = 0; j < jobs->size(); ++j) {
        const Job& job = (*jobs)[j];
        for (const auto& r : job.check->recipients()) {
          smtp::PathResult p = smtp::parse_mailbox(r);
          if (p.ok()) mailboxes.push_back(p.mailbox);
        }
        if (!job.ip.empty() && job.first_of_ip) {
          query_of[j] = queries.size();
          queries.push_back(harvest->query(job.ip, now_ms));
        }
      }
      std::vector<std::optional<store::HarvestCounts>> counts;
      Status lookup = mailboxes.empty() && queries.empty()
                          ? Status::Ok()
                          : store::fetch_batch(*conn, mailboxes, &facts, queries, &counts);
      for (size_t j = 0; j < jobs->size(); ++j) {
        pre[j].facts = &facts;
        pre[j].lookup = lookup;
        pre[j].counts_current = query_of[j] != SIZE_MAX;
        if (pre[j].counts_current && query_of[j] < counts.size()) pre[j].counts = counts[query_of[j]];
      }
    }
    for (size_t j = 0; j < jobs->size(); ++j) (*jobs)[j].work(conn, error, conn ? &pre[j] : nullptr);
  };
  // On this thread when the pool's inline connection is free (store/pool.h): no hand-off to a worker.
  if (!jobs->empty() && !pool_.run_or_submit([run](store::RedisConn& conn) { run(&conn, ""); }))
    run(nullptr, "directory busy");
  finish_one();
  return reactor;
}

}  // namespace doorman::directory::service
