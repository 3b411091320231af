// doorman.v1.RecipientService: the verdicts for one RCPT group.
//
// Talks to the edge over gRPC; sees untrusted addresses (from SMTP clients,
// relayed by the edge). The handler never blocks: it submits one job to the
// Redis pool, which fetches the facts for the whole group in one pipelined
// round trip (store::fetch_group), runs the checks (checks/registry.h) and
// finishes the RPC. Redis trouble is a business outcome: 451 4.4.3 DEFER
// verdicts with status OK. More than kMaxRecipients recipients is
// INVALID_ARGUMENT. Addresses are logged at debug level only.
#pragma once

#include "directory/store/pool.h"
#include "doorman/v1/recipient.grpc.pb.h"

namespace doorman::directory::service {

inline constexpr int kMaxRecipients = 1000;

class RecipientService final : public doorman::v1::RecipientService::CallbackService {
 public:
  explicit RecipientService(store::RedisPool& pool) : pool_(pool) {}
  // Keep the generated synchronous overloads visible (-Woverloaded-virtual).
  using doorman::v1::RecipientService::CallbackService::CheckRecipients;

  grpc::ServerUnaryReactor* CheckRecipients(grpc::CallbackServerContext* ctx,
                                            const doorman::v1::CheckRecipientsRequest* req,
                                            doorman::v1::CheckRecipientsResponse* resp) override;

 private:
  store::RedisPool& pool_;
};

// The work of one CheckRecipients call on a connection (also used by
// Explain): one fetch, then the checks per recipient. With `conn` null, the
// lookup is taken as failed with `error`.
void check_group(store::RedisConn* conn, const std::vector<std::string>& recipients,
                 std::vector<doorman::v1::Verdict>* verdicts, std::vector<std::vector<std::string>>* steps,
                 const std::string& error = "");

}  // namespace doorman::directory::service
