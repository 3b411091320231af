#include "edge/directory_client.h"

namespace doorman::edge {

namespace {

// The gRPC stub as the batcher's transport.
class GrpcTransport final : public BatchTransport {
 public:
  explicit GrpcTransport(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)), stub_(doorman::v1::RecipientService::NewStub(channel_)) {}

  void check_batch(const doorman::v1::CheckBatchRequest& request, SteadyClock::time_point deadline,
                   BatchDone done) override {
    start<doorman::v1::CheckBatchResponse>(deadline, std::move(done), [&](auto* context, auto* response, auto cb) {
      stub_->async()->CheckBatch(context, &request, response, std::move(cb));
    });
  }

  void check_one(const doorman::v1::CheckRecipientsRequest& request, SteadyClock::time_point deadline,
                 OneDone done) override {
    start<doorman::v1::CheckRecipientsResponse>(deadline, std::move(done), [&](auto* context, auto* response, auto cb) {
      stub_->async()->CheckRecipients(context, &request, response, std::move(cb));
    });
  }

 private:
  // One asynchronous call: its context and response live until `done` ran.
  template <class Response, class Done, class Start>
  void start(SteadyClock::time_point deadline, Done done, Start start_call) {
    struct Call {
      grpc::ClientContext context;
      Response response;
      Done done;
    };
    auto call = std::make_shared<Call>();
    call->done = std::move(done);
    call->context.set_deadline(to_system(deadline));
    start_call(&call->context, &call->response,
               std::function<void(grpc::Status)>([call](grpc::Status status) { call->done(status, call->response); }));
  }

  static std::chrono::system_clock::time_point to_system(SteadyClock::time_point t) {
    return std::chrono::system_clock::now() +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(t - SteadyClock::now());
  }
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<doorman::v1::RecipientService::Stub> stub_;
};

}  // namespace

DirectoryClient::DirectoryClient(const std::string& target, std::chrono::milliseconds deadline,
                                 const grpc_tls::ClientTls& tls, DirectoryBatcher::Settings batch)
    : deadline_(deadline) {
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  // Reconnect quickly after a directory restart: mail is waiting.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  auto credentials = grpc_tls::channel_credentials(tls, &args);
  batcher_ = DirectoryBatcher::create(
      std::make_shared<GrpcTransport>(grpc::CreateCustomChannel(target, credentials, args)), batch);
}

void DirectoryClient::check(const CheckRequest& request, const std::string& session_id, const std::string& client_ip,
                            std::function<void(CheckResult)> done) {
  doorman::v1::CheckRecipientsRequest req;
  auto* s = req.mutable_session();
  s->set_session_id(session_id);
  s->set_client_ip(client_ip);
  s->set_helo(request.helo);
  s->set_mail_from(request.mail_from);
  for (const auto& r : request.recipients) req.add_recipients(r.mailbox);
  {
    std::lock_guard lock(in_flight_->mu);
    ++in_flight_->count;
  }
  batcher_->submit(std::move(req), SteadyClock::now() + deadline_,
                   [done = std::move(done), in_flight = in_flight_](CheckResult result) {
                     done(std::move(result));
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
