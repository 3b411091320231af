#include "directory/service/recipient_service.h"

#include "common/log.h"
#include "directory/checks/registry.h"
#include "directory/store/store.h"

namespace doorman::directory::service {

void check_group(store::RedisConn* conn, const std::vector<std::string>& recipients,
                 std::vector<doorman::v1::Verdict>* verdicts, std::vector<std::vector<std::string>>* steps,
                 const std::string& error) {
  std::vector<smtp::Mailbox> mailboxes;
  for (const auto& r : recipients) {
    smtp::PathResult p = smtp::parse_mailbox(r);
    if (p.ok()) mailboxes.push_back(p.mailbox);
  }
  store::GroupFacts group;
  Status lookup = Status::Unavailable(error.empty() ? "no connection" : error);
  if (conn) lookup = mailboxes.empty() ? Status::Ok() : store::fetch_group(*conn, mailboxes, &group);
  for (const auto& r : recipients) {
    checks::Evaluation e = checks::evaluate(checks::make_facts(r, group, lookup));
    verdicts->push_back(std::move(e.verdict));
    if (steps) steps->push_back(std::move(e.steps));
  }
}

grpc::ServerUnaryReactor* RecipientService::CheckRecipients(grpc::CallbackServerContext* ctx,
                                                            const doorman::v1::CheckRecipientsRequest* req,
                                                            doorman::v1::CheckRecipientsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (req->recipients_size() > kMaxRecipients) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "at most " + std::to_string(kMaxRecipients) + " recipients per call"));
    return reactor;
  }
  auto finish = [req, resp, reactor](store::RedisConn* conn, const std::string& error) {
    std::vector<std::string> rcpts(req->recipients().begin(), req->recipients().end());
    std::vector<doorman::v1::Verdict> verdicts;
    check_group(conn, rcpts, &verdicts, nullptr, error);
    int accepted = 0, rejected = 0, deferred = 0;
    for (size_t i = 0; i < verdicts.size(); ++i) {
      const auto& v = verdicts[i];
      if (v.decision() == doorman::v1::DECISION_ACCEPT) ++accepted;
      else if (v.decision() == doorman::v1::DECISION_REJECT) ++rejected;
      else ++deferred;
      if (log::enabled(log::Level::kDebug))
        log::debug("verdict").kv("session", req->session().session_id()).kv("rcpt", rcpts[i])
            .kv("code", v.code()).kv("reason", v.reason());
      *resp->add_verdicts() = v;
    }
    log::info("check").kv("session", req->session().session_id()).kv("recipients", rcpts.size())
        .kv("accepted", accepted).kv("rejected", rejected).kv("deferred", deferred);
    reactor->Finish(grpc::Status::OK);
  };
  if (!pool_.submit([finish](store::RedisConn& conn) { finish(&conn, ""); })) finish(nullptr, "directory busy");
  return reactor;
}

}  // namespace doorman::directory::service
