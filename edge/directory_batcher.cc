#include "edge/directory_batcher.h"

#include <algorithm>

#include "edge/metrics.h"

namespace doorman::edge {

RcptReason DirectoryBatcher::reason_from_proto(doorman::v1::Reason r) {
  namespace v1 = doorman::v1;
  switch (r) {
    case v1::REASON_LISTED: return RcptReason::kListed;
    case v1::REASON_NOT_LISTED: return RcptReason::kNotListed;
    case v1::REASON_CALLOUT_VALID: return RcptReason::kCalloutValid;
    case v1::REASON_CALLOUT_UNKNOWN: return RcptReason::kCalloutUnknown;
    case v1::REASON_CALLOUT_PENDING: return RcptReason::kCalloutPending;
    case v1::REASON_CALLOUT_TEMPFAIL: return RcptReason::kCalloutTempfail;
    case v1::REASON_CATCH_ALL: return RcptReason::kCatchAll;
    case v1::REASON_ACCEPT_ALL: return RcptReason::kAcceptAll;
    case v1::REASON_POSTMASTER: return RcptReason::kPostmaster;
    case v1::REASON_RELAY_DENIED: return RcptReason::kRelayDenied;
    case v1::REASON_ROUTING: return RcptReason::kRouting;
    case v1::REASON_SYNTAX: return RcptReason::kSyntax;
    case v1::REASON_HARVEST_BLOCK: return RcptReason::kHarvestBlock;
    case v1::REASON_LOOKUP_ERROR: return RcptReason::kLookupError;
    case v1::REASON_NOT_CONFIGURED: return RcptReason::kNotConfigured;
    default: return RcptReason::kUnspecified;  // an older or newer directory
  }
}

Verdict DirectoryBatcher::from_proto(const doorman::v1::Verdict& v) {
  Verdict out;
  switch (v.decision()) {
    case doorman::v1::DECISION_ACCEPT: out.decision = Verdict::Decision::kAccept; break;
    case doorman::v1::DECISION_REJECT: out.decision = Verdict::Decision::kReject; break;
    default: out.decision = Verdict::Decision::kDefer; break;
  }
  out.reply = smtp::Reply{static_cast<int>(v.code()), v.enhanced_code(), v.text()};
  out.reason = v.reason();
  switch (v.source()) {
    case doorman::v1::SOURCE_LIST: out.source = RcptSource::kList; break;
    case doorman::v1::SOURCE_CACHE: out.source = RcptSource::kCache; break;
    case doorman::v1::SOURCE_PROBE: out.source = RcptSource::kProbe; break;
    case doorman::v1::SOURCE_POLICY: out.source = RcptSource::kPolicy; break;
    case doorman::v1::SOURCE_ERROR: out.source = RcptSource::kError; break;
    case doorman::v1::SOURCE_LIMIT: out.source = RcptSource::kLimit; break;
    default: out.source = RcptSource::kError; break;  // a skewed version: our trouble
  }
  out.route.assign(v.route().hosts().begin(), v.route().hosts().end());
  out.delay = std::chrono::milliseconds(v.delay_ms());
  out.why = reason_from_proto(v.reason_code());
  // Shadow mode: only an accept may carry a would-be refusal.
  if (v.has_would_reject() && out.decision == Verdict::Decision::kAccept) {
    out.would_reject = reason_from_proto(v.would_reject().reason());
    out.would_code = static_cast<int>(v.would_reject().code());
  }
  if (v.source() == doorman::v1::SOURCE_CACHE) out.cache_age = std::chrono::milliseconds(v.cache_age_ms());
  out.source_name = v.source_name();
  return out;
}

std::shared_ptr<DirectoryBatcher> DirectoryBatcher::create(std::shared_ptr<BatchTransport> transport, Settings settings,
                                                           Now now) {
  return std::shared_ptr<DirectoryBatcher>(new DirectoryBatcher(std::move(transport), settings, std::move(now)));
}

DirectoryBatcher::DirectoryBatcher(std::shared_ptr<BatchTransport> transport, Settings settings, Now now)
    : transport_(std::move(transport)), settings_(settings), now_(std::move(now)) {
  settings_.max_batch = std::max<size_t>(settings_.max_batch, 1);
  batching_ = settings_.max_in_flight > 0;
}

size_t DirectoryBatcher::in_flight() const {
  std::lock_guard lock(mu_);
  return in_flight_;
}

size_t DirectoryBatcher::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

bool DirectoryBatcher::batching() const {
  std::lock_guard lock(mu_);
  return batching_;
}

void DirectoryBatcher::submit(doorman::v1::CheckRecipientsRequest request, SteadyClock::time_point deadline,
                              std::function<void(CheckResult)> done) {
  const size_t expected = static_cast<size_t>(request.recipients_size());
  Item item{std::move(request), expected, now_(), deadline, std::move(done)};
  std::vector<Item> batch, expired;
  SteadyClock::time_point started;
  bool queued = false;
  {
    std::lock_guard lock(mu_);
    if (batching_) {
      queue_.push_back(std::move(item));
      queued = true;
      take_locked(&batch, &expired, &started);
    }
  }
  if (!queued) {  // not batching: as before issue #16
    send_one(std::move(item));
    return;
  }
  dispatch(std::move(batch), std::move(expired), started);
}

void DirectoryBatcher::take_locked(std::vector<Item>* batch, std::vector<Item>* expired,
                                   SteadyClock::time_point* started) {
  const auto now = now_();
  // Calls in flight for longer than stall_after do not count.
  size_t young = 0;
  for (auto it = started_.rbegin(); it != started_.rend() && now - *it < settings_.stall_after; ++it) ++young;
  if (young >= settings_.max_in_flight) return;
  while (!queue_.empty() && batch->size() < settings_.max_batch) {
    Item& front = queue_.front();
    if (front.deadline <= now) expired->push_back(std::move(front));
    else batch->push_back(std::move(front));
    queue_.pop_front();
  }
  if (batch->empty()) return;
  ++in_flight_;
  *started = now;
  started_.push_back(now);
}

void DirectoryBatcher::dispatch(std::vector<Item> batch, std::vector<Item> expired, SteadyClock::time_point started) {
  EdgeMetrics* m = edge_metrics();
  for (auto& item : expired) {
    if (m) m->directory_queue_expired.inc();
    CheckResult r;
    r.error = "deadline passed in the queue";
    item.done(std::move(r));
  }
  if (!batch.empty()) send_batch(std::move(batch), started);
}

void DirectoryBatcher::send_batch(std::vector<Item> batch, SteadyClock::time_point started) {
  auto request = std::make_shared<doorman::v1::CheckBatchRequest>();
  auto deadline = SteadyClock::time_point::max();
  const auto now = now_();
  EdgeMetrics* m = edge_metrics();
  if (m) m->directory_batch_size.observe(static_cast<double>(batch.size()));
  for (auto& item : batch) {
    deadline = std::min(deadline, item.deadline);
    if (m) m->directory_queue_wait.observe(std::chrono::duration<double>(now - item.queued).count());
    // The request moves into the batch; on UNIMPLEMENTED it moves back out (on_batch).
    request->add_checks()->Swap(&item.request);
  }
  auto items = std::make_shared<std::vector<Item>>(std::move(batch));
  transport_->check_batch(*request, deadline,
                          [self = shared_from_this(), request, items, started](const grpc::Status& status,
                                                                     const doorman::v1::CheckBatchResponse& resp) {
                            const bool unimplemented = status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
                            const bool whole = status.ok() && static_cast<size_t>(resp.results_size()) == items->size();
                            for (size_t i = 0; i < items->size(); ++i) {
                              // Checks to send again alone get their request back.
                              if (unimplemented || (whole && resp.results(static_cast<int>(i)).ask_alone()))
                                (*items)[i].request.Swap(request->mutable_checks(static_cast<int>(i)));
                            }
                            self->on_batch(std::move(*items), started, status, resp);
                          });
}

void DirectoryBatcher::send_one(Item item) {
  auto request = std::make_shared<doorman::v1::CheckRecipientsRequest>(std::move(item.request));
  const size_t expected = item.expected;
  auto done = std::make_shared<std::function<void(CheckResult)>>(std::move(item.done));
  transport_->check_one(*request, item.deadline,
                        [request, expected, done](const grpc::Status& status,
                                                  const doorman::v1::CheckRecipientsResponse& resp) {
                          (*done)(result_of(status, resp, expected));
                        });
}

CheckResult DirectoryBatcher::result_of(const grpc::Status& status, const doorman::v1::CheckRecipientsResponse& resp,
                                        size_t expected) {
  CheckResult result;
  if (!status.ok()) {
    result.error = "grpc " + std::to_string(status.error_code()) + ": " + status.error_message();
  } else if (static_cast<size_t>(resp.verdicts_size()) != expected) {
    result.error = "directory returned " + std::to_string(resp.verdicts_size()) + " verdicts for " +
                   std::to_string(expected) + " recipients";
  } else {
    result.ok = true;
    result.verdicts.reserve(expected);
    for (const auto& v : resp.verdicts()) result.verdicts.push_back(from_proto(v));
  }
  return result;
}

void DirectoryBatcher::on_batch(std::vector<Item> items, SteadyClock::time_point started, const grpc::Status& status,
                                const doorman::v1::CheckBatchResponse& resp) {
  std::vector<Item> next, expired, fallback;
  SteadyClock::time_point next_started;
  const bool unimplemented = status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
  {
    std::lock_guard lock(mu_);
    --in_flight_;
    // Calls may return out of order: remove this call's own start time.
    auto it = std::find(started_.begin(), started_.end(), started);
    if (it != started_.end()) started_.erase(it);
    if (unimplemented) {
      // An older directory: one CheckRecipients call per check from now on.
      batching_ = false;
      for (auto& q : queue_) fallback.push_back(std::move(q));
      queue_.clear();
    } else {
      take_locked(&next, &expired, &next_started);
    }
  }
  if (unimplemented) {
    if (EdgeMetrics* m = edge_metrics()) m->directory_batch_fallback.inc();
    for (auto& item : items) send_one(std::move(item));
    for (auto& item : fallback) send_one(std::move(item));
    return;
  }
  // The next batch goes out before this one's results are delivered.
  dispatch(std::move(next), std::move(expired), next_started);
  const bool whole = status.ok() && static_cast<size_t>(resp.results_size()) == items.size();
  for (size_t i = 0; i < items.size(); ++i) {
    Item& item = items[i];
    CheckResult r;
    if (!status.ok()) {
      r.error = "grpc " + std::to_string(status.error_code()) + ": " + status.error_message();
    } else if (!whole) {
      r.error = "directory returned " + std::to_string(resp.results_size()) + " results for " +
                std::to_string(items.size()) + " checks";
    } else {
      const auto& one = resp.results(static_cast<int>(i));
      if (one.ask_alone()) {
        // It needs a callout probe, which a batch does not wait for: its own call waits (same deadline).
        if (EdgeMetrics* m = edge_metrics()) m->directory_asked_alone.inc();
        send_one(std::move(item));
        continue;
      }
      r = result_of(grpc::Status(static_cast<grpc::StatusCode>(one.status_code()), one.status_message()),
                    one.response(), item.expected);
    }
    item.done(std::move(r));
  }
}

}  // namespace doorman::edge
