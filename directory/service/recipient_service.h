// doorman.v1.RecipientService: the verdicts for one RCPT group.
//
// Talks to the edge over gRPC; sees untrusted addresses (from SMTP clients,
// relayed by the edge). CheckRecipients never blocks: it submits one job to
// the Redis pool, which fetches the facts for the whole group in one
// pipelined round trip (store::fetch_group), runs the checks
// (checks/registry.h) and finishes the RPC. CheckBatch runs its job on the
// calling thread when the pool's inline connection is free (store/pool.h). Redis trouble is a business outcome: 451 4.4.3 DEFER
// verdicts with status OK; a store without its marker (Redis lost its data)
// 451 4.3.0 for every recipient. More than kMaxRecipients recipients is
// INVALID_ARGUMENT. Addresses are logged at debug level only.
//
// Callout domains (callout/callout.h): a recipient that is not cached is
// probed and its verdict waits for the answer up to the wait budget
// (--callout-wait, default 2 s; then 450 4.1.1 "verification in progress"
// and the probe goes on in the background). The RPC finishes when every
// such recipient has its answer or its budget is spent. Cached results due
// for a refresh are served and refreshed in the background. Without a
// callout engine (nullptr), a miss stays 450 4.1.1.
//
// Deadlines: the job carries the call's deadline; started after it, it does
// no Redis work and finishes with DEADLINE_EXCEEDED; a lookup that outlived
// it starts no probe and writes no harvest count (counted in
// doorman_directory_expired_jobs_total{kind="check"}).
//
// Shadow mode (checks/shadow.cc, issue #14): a domain with enforce false
// answers would-be refusals of unknown recipients with an ACCEPT carrying
// WouldReject; they count as unknown for the harvest defence, as
// decision="would_reject" in the recipients metric, and in the domain's
// shadow count (store::count_would_reject: one pipelined job after the
// reply, like the harvest write; an expired caller counts nothing).
//
// Harvest defence (harvest/harvest.h): with a client IP in the session, its
// unknown-recipient count is read in the same lookup round trip. A deferred
// IP gets 450 4.7.1 for every recipient, with no probe; past the tarpit
// threshold every rejection carries delay_ms; the call's unknown recipients
// are recorded after the reply is sent.
//
// Metrics (directory/metrics.h): each call counts once by result (ok,
// redis_error, invalid) with its duration; each verdict by decision and
// source; each callout-decided recipient by cache result (hit, miss,
// refresh).
#pragma once

#include <chrono>
#include <functional>
#include <optional>

#include "directory/callout/callout.h"
#include "directory/checks/registry.h"
#include "directory/harvest/harvest.h"
#include "directory/service/store_state.h"
#include "directory/store/harvest_counts.h"
#include "directory/store/pool.h"
#include "doorman/v1/recipient.grpc.pb.h"

namespace doorman::directory::service {

// What a CheckBatch job fetched for all its checks in one round trip
// (store::fetch_batch), handed to check_group instead of its own fetch.
struct Prefetch {
  const store::GroupFacts* facts = nullptr;  // the facts of every mailbox of the batch
  Status lookup = Status::Ok();              // how that fetch went
  // The harvest counts of this check's client, when they are current (its
  // first check in the batch); otherwise check_group reads them itself
  // (after the earlier checks' counts were written).
  bool counts_current = false;
  std::optional<store::HarvestCounts> counts;
};

inline constexpr int kMaxRecipients = 1000;
// CheckBatch: at most this many checks per call (the edge sends at most 64).
inline constexpr int kMaxBatchChecks = 256;

class RecipientService final : public doorman::v1::RecipientService::CallbackService {
 public:
  // `harvest` null: no harvest defence. `store_state` (optional) learns
  // from every lookup whether the store's marker is there.
  explicit RecipientService(store::RedisPool& pool, callout::Callout* callout = nullptr,
                            std::shared_ptr<harvest::Harvest> harvest = nullptr,
                            std::shared_ptr<StoreState> store_state = nullptr, std::string postmaster_domain = "")
      : pool_(pool),
        callout_(callout),
        harvest_(std::move(harvest)),
        store_state_(std::move(store_state)),
        postmaster_domain_(std::move(postmaster_domain)) {}
  // Keep the generated synchronous overloads visible (-Woverloaded-virtual).
  using doorman::v1::RecipientService::CallbackService::CheckRecipients;
  using doorman::v1::RecipientService::CallbackService::CheckBatch;

  grpc::ServerUnaryReactor* CheckRecipients(grpc::CallbackServerContext* ctx,
                                            const doorman::v1::CheckRecipientsRequest* req,
                                            doorman::v1::CheckRecipientsResponse* resp) override;
  // Several checks (issue #16): one pool job runs them in order, each as
  // CheckRecipients would (on the calling gRPC thread when the pool's inline
  // connection is free: RedisPool::run_or_submit), and the RPC finishes when the last has its
  // verdicts (a callout check may finish later than the job). A check's own
  // failure (too many recipients, its deadline) is in its result.
  grpc::ServerUnaryReactor* CheckBatch(grpc::CallbackServerContext* ctx, const doorman::v1::CheckBatchRequest* req,
                                       doorman::v1::CheckBatchResponse* resp) override;

 private:
  using Finish = std::function<void(grpc::Status)>;
  // With a Prefetch (CheckBatch), the check uses it instead of its own lookup.
  using Work = std::function<void(store::RedisConn*, const std::string&, const Prefetch*)>;
  // The work of one check, to run on a pool worker's connection (or with
  // null and the reason there is none): it fills *resp and calls `finish`
  // exactly once, at once or after the callout answers. With
  // `record_inline`, the harvest count is written on the worker's
  // connection before the work returns (not as a later pool job).
  // With `ask_alone` (CheckBatch), a check that needs a live callout probe
  // calls it instead of waiting for the probe: it decides and counts nothing.
  Work check_work(const doorman::v1::CheckRecipientsRequest* req, doorman::v1::CheckRecipientsResponse* resp,
                  std::chrono::system_clock::time_point deadline, int64_t now_ms, Finish finish,
                  bool record_inline, std::function<void()> ask_alone = nullptr);

  store::RedisPool& pool_;
  callout::Callout* callout_;
  std::shared_ptr<harvest::Harvest> harvest_;
  std::shared_ptr<StoreState> store_state_;
  std::string postmaster_domain_;
};

// The refresh ages of the engine's settings, for the checks.
checks::CalloutAges callout_ages(const callout::Callout* callout);

// The verdict for a callout outcome (service/recipient_service.cc).
doorman::v1::Verdict callout_verdict(const checks::Facts& f, const callout::Outcome& o);

// The work of one CheckRecipients call on a connection (also used by
// Explain): one fetch, then the checks per recipient. With `conn` null, the
// lookup is taken as failed with `error`.
//
// A bare "postmaster" (any case, no domain: RFC 5321 §4.5.1; the edge sends
// it when it has no --postmaster-domain of its own) is checked as
// postmaster@D, D = `postmaster_domain` (the directory's
// --postmaster-domain) or else the first guarded domain in sorted order
// (one more round trip, only for a call that has one); no guarded domain ->
// 451 4.3.0. Its first step line says how it was resolved.
void check_group(store::RedisConn* conn, const std::vector<std::string>& recipients,
                 std::vector<doorman::v1::Verdict>* verdicts, std::vector<std::vector<std::string>>* steps,
                 const std::string& error = "", const checks::CalloutAges& ages = {},
                 std::vector<checks::Facts>* facts = nullptr, std::vector<checks::CalloutPlan>* plans = nullptr,
                 const store::HarvestQuery* harvest = nullptr,
                 std::optional<store::HarvestCounts>* harvest_counts = nullptr,
                 const std::string& postmaster_domain = "", const Prefetch* prefetch = nullptr);

}  // namespace doorman::directory::service
