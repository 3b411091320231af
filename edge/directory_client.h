// The edge's client of doorman.v1.RecipientService.
//
// Asynchronous (gRPC callback API): check() returns at once and calls `done`
// later on a gRPC thread; the caller posts the result back to its own
// executor. Every call has a deadline; a transport failure, a deadline or a
// malformed answer is reported as !ok, which the session turns into 451 4.4.3
// for the whole group. The target is a gRPC URI, so "dns:///directory:50051"
// with the round_robin policy spreads calls over all directory replicas.
// With `tls` enabled the channel verifies the directory's certificate and
// presents the client certificate when given (mTLS); a refused handshake is
// a transport failure like any other: 451 4.4.3, never a 5xx.
//
// Calls go through a DirectoryBatcher (edge/directory_batcher.h): at most
// `batch.max_in_flight` calls in flight (--directory-batch-in-flight); checks
// submitted meanwhile, from any session, go out together in one CheckBatch
// call when one returns. A directory without CheckBatch is detected
// (UNIMPLEMENTED) and served one CheckRecipients call per check.
//
// Does not see client bytes directly: it sends parsed, canonical mailboxes.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "common/grpc_tls.h"
#include "doorman/v1/recipient.grpc.pb.h"
#include "edge/directory_batcher.h"
#include "edge/session/session.h"

namespace doorman::edge {

class DirectoryClient {
 public:
  DirectoryClient(const std::string& target, std::chrono::milliseconds deadline,
                  const grpc_tls::ClientTls& tls = {}, DirectoryBatcher::Settings batch = {});

  void check(const CheckRequest& request, const std::string& session_id, const std::string& client_ip,
             std::function<void(CheckResult)> done);

  // Waits (at most `max`) until no call is in flight. The edge calls it after
  // its server stopped and before the io_contexts that the callbacks post to
  // are destroyed; the destructor waits too.
  void wait_idle(std::chrono::milliseconds max);
  ~DirectoryClient();

  // Converts a wire verdict; exposed for tests.
  static Verdict from_proto(const doorman::v1::Verdict& v) { return DirectoryBatcher::from_proto(v); }
  static RcptReason reason_from_proto(doorman::v1::Reason r) { return DirectoryBatcher::reason_from_proto(r); }

 private:
  std::chrono::milliseconds deadline_;
  std::shared_ptr<DirectoryBatcher> batcher_;
  // Calls in flight, shared with their callbacks (which may run on gRPC
  // threads after this object is gone).
  struct InFlight {
    std::mutex mu;
    std::condition_variable idle;
    size_t count = 0;
  };
  std::shared_ptr<InFlight> in_flight_ = std::make_shared<InFlight>();
};

}  // namespace doorman::edge
