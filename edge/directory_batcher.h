// Natural batching of recipient checks across sessions (issue #16).
//
// At most `max_in_flight` calls to the directory are in flight. A check
// submitted while fewer are in flight goes out at once (nothing waits at low
// load); otherwise it queues, and the queue goes out as one CheckBatch call
// (at most `max_batch` checks) as soon as a call in flight returns. There is
// no timer: under load batches form by themselves, one call and one
// directory pool job for many sessions' RCPTs instead of one each.
//
// Callout probes: the directory does not wait for a probe inside a batch;
// a check that needs one comes back with `ask_alone` and is sent again as
// its own CheckRecipients call (same deadline), which waits for the probe.
// Slow calls: a call in flight for longer than `stall_after` (a slow Redis)
// stops counting against the limit, so a new check is sent at once instead
// of queueing behind it. There is still no timer: a check that queued while the calls were
// young goes out with the next check that arrives or the next call that
// returns, whichever is first.
//
// Deadlines: each check has its own. A batch's call carries the earliest
// deadline of its checks. A queued check waits for an earlier call, whose
// deadline is not later than its own, so it never waits past its own
// deadline: a check found expired when its batch is taken fails then
// ("deadline passed in the queue") without being sent.
//
// Failures: a non-OK call status, or an answer with the wrong number of
// results or verdicts, fails every check of the batch (the session defers:
// 451 4.4.3, never a 5xx); a check's own non-OK status fails that check
// alone. A directory older than CheckBatch answers UNIMPLEMENTED: the
// batcher then sends that batch and everything after it as one
// CheckRecipients call per check (as before issue #16) for the rest of its
// life. max_in_flight 0 switches batching off from the start.
//
// Sans-I/O in the sense that matters for tests: the calls go through a
// BatchTransport (the gRPC stub in DirectoryClient, a fake in the unit
// tests); completions may arrive on any thread. Does not see client bytes.
#pragma once

#include <grpcpp/support/status.h>

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "doorman/v1/recipient.pb.h"
#include "edge/session/session.h"

namespace doorman::edge {

struct CheckResult {
  bool ok = false;
  std::string error;  // for logs, when !ok
  std::vector<Verdict> verdicts;
};

using SteadyClock = std::chrono::steady_clock;

// How a batcher reaches the directory. The request stays alive until `done`
// has been called; `done` is called exactly once, on any thread.
class BatchTransport {
 public:
  virtual ~BatchTransport() = default;
  using BatchDone = std::function<void(const grpc::Status&, const doorman::v1::CheckBatchResponse&)>;
  using OneDone = std::function<void(const grpc::Status&, const doorman::v1::CheckRecipientsResponse&)>;
  virtual void check_batch(const doorman::v1::CheckBatchRequest& request, SteadyClock::time_point deadline,
                           BatchDone done) = 0;
  virtual void check_one(const doorman::v1::CheckRecipientsRequest& request, SteadyClock::time_point deadline,
                         OneDone done) = 0;
};

class DirectoryBatcher : public std::enable_shared_from_this<DirectoryBatcher> {
 public:
  struct Settings {
    size_t max_in_flight = 1;  // 0: no batching, one CheckRecipients call per check
    size_t max_batch = 64;     // checks per CheckBatch call (the directory takes up to 256)
    // A call in flight for longer stops counting against max_in_flight.
    std::chrono::milliseconds stall_after{25};
  };
  using Now = std::function<SteadyClock::time_point()>;

  // Always owned by a shared_ptr: completions keep it alive.
  static std::shared_ptr<DirectoryBatcher> create(std::shared_ptr<BatchTransport> transport, Settings settings,
                                                  Now now = SteadyClock::now);

  // `done` gets one verdict per recipient of `request`, or !ok.
  void submit(doorman::v1::CheckRecipientsRequest request, SteadyClock::time_point deadline,
              std::function<void(CheckResult)> done);

  size_t in_flight() const;
  size_t queued() const;
  bool batching() const;  // false once fallen back to CheckRecipients (or with max_in_flight 0)

  // Converts a wire verdict; exposed for tests.
  static Verdict from_proto(const doorman::v1::Verdict& v);
  static RcptReason reason_from_proto(doorman::v1::Reason r);

 private:
  struct Item {
    doorman::v1::CheckRecipientsRequest request;
    size_t expected = 0;  // recipients (the request moves into the batch's)
    SteadyClock::time_point queued, deadline;
    std::function<void(CheckResult)> done;
  };
  DirectoryBatcher(std::shared_ptr<BatchTransport> transport, Settings settings, Now now);

  // Under mu_: when a call may start, moves the next batch out of the queue
  // (expired checks into *expired), counts it in flight and sets *started.
  void take_locked(std::vector<Item>* batch, std::vector<Item>* expired, SteadyClock::time_point* started);
  // Outside the lock: fails the expired checks, sends the batch.
  void dispatch(std::vector<Item> batch, std::vector<Item> expired, SteadyClock::time_point started);
  void send_batch(std::vector<Item> batch, SteadyClock::time_point started);
  void send_one(Item item);
  void on_batch(std::vector<Item> items, SteadyClock::time_point started, const grpc::Status& status,
                const doorman::v1::CheckBatchResponse& resp);

  static CheckResult result_of(const grpc::Status& status, const doorman::v1::CheckRecipientsResponse& resp,
                               size_t expected);

  std::shared_ptr<BatchTransport> transport_;
  Settings settings_;
  Now now_;
  mutable std::mutex mu_;
  std::deque<Item> queue_;
  size_t in_flight_ = 0;
  // Start times of the calls in flight, oldest first (a call that returns
  // removes its own entry).
  std::deque<SteadyClock::time_point> started_;
  bool batching_ = true;
};

}  // namespace doorman::edge
