#include "edge/directory_client.h"

namespace doorman::edge {

DirectoryClient::DirectoryClient(const std::string& target, std::chrono::milliseconds deadline,
                                 const grpc_tls::ClientTls& tls)
    : deadline_(deadline) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  // Reconnect quickly after a directory restart: mail is waiting.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto credentials = grpc_tls::channel_credentials(tls, &args);
  channel_ = grpc::CreateCustomChannel(target, credentials, args);
  stub_ = doorman::v1::RecipientService::NewStub(channel_);
}

RcptReason DirectoryClient::reason_from_proto(doorman::v1::Reason r) {
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

Verdict DirectoryClient::from_proto(const doorman::v1::Verdict& v) {
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

namespace {
struct Call {
  grpc::ClientContext context;
  doorman::v1::CheckRecipientsRequest request;
  doorman::v1::CheckRecipientsResponse response;
  std::function<void(CheckResult)> done;
};
}  // namespace

void DirectoryClient::check(const CheckRequest& request, const std::string& session_id, const std::string& client_ip,
                            std::function<void(CheckResult)> done) {
  auto call = std::make_shared<Call>();
  call->done = std::move(done);
  call->context.set_deadline(std::chrono::system_clock::now() + deadline_);
  auto* s = call->request.mutable_session();
  s->set_session_id(session_id);
  s->set_client_ip(client_ip);
  s->set_helo(request.helo);
  s->set_mail_from(request.mail_from);
  for (const auto& r : request.recipients) call->request.add_recipients(r.mailbox);
  const size_t expected = request.recipients.size();
  {
    std::lock_guard lock(in_flight_->mu);
    ++in_flight_->count;
  }
  stub_->async()->CheckRecipients(&call->context, &call->request, &call->response,
                                  [call, expected, in_flight = in_flight_](grpc::Status status) {
                                    CheckResult result;
                                    if (!status.ok()) {
                                      result.error = "grpc " + std::to_string(status.error_code()) + ": " +
                                                     status.error_message();
                                    } else if (static_cast<size_t>(call->response.verdicts_size()) != expected) {
                                      result.error = "directory returned " +
                                                     std::to_string(call->response.verdicts_size()) +
                                                     " verdicts for " + std::to_string(expected) + " recipients";
                                    } else {
                                      result.ok = true;
                                      for (const auto& v : call->response.verdicts())
                                        result.verdicts.push_back(from_proto(v));
                                    }
                                    call->done(std::move(result));
                                    std::lock_guard lock(in_flight->mu);
                                    if (--in_flight->count == 0) in_flight->idle.notify_all();
                                  });
}

void DirectoryClient::wait_idle(std::chrono::milliseconds max) {
  std::unique_lock lock(in_flight_->mu);
  in_flight_->idle.wait_for(lock, max, [this] { return in_flight_->count == 0; });
}

DirectoryClient::~DirectoryClient() { wait_idle(deadline_ + std::chrono::seconds(1)); }

}  // namespace doorman::edge
