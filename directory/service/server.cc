#include "directory/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>

#include <cstring>

#include "common/log.h"
#include "directory/metrics.h"
#include "directory/store/callout_cache.h"
#include "directory/store/store.h"

namespace doorman::directory::service {
namespace {

constexpr char kAdminPrefix[] = "/doorman.v1.AdminService/";
constexpr auto kCensusInterval = std::chrono::seconds(10);
constexpr auto kMarkerInterval = std::chrono::seconds(1);

// Counts each AdminService call once, when its status is sent. The method
// name comes from the server's own method table (a fixed set), never from
// the request.
class AdminMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit AdminMetricsInterceptor(std::string method) : method_(std::move(method)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS))
      directory_metrics().admin_request(method_, grpc_code_name(methods->GetSendStatus().error_code()));
    methods->Proceed();
  }

 private:
  std::string method_;
};

class AdminMetricsFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override {
    const char* m = info->method();
    if (m == nullptr || std::strncmp(m, kAdminPrefix, sizeof kAdminPrefix - 1) != 0) return nullptr;
    return new AdminMetricsInterceptor(m + sizeof kAdminPrefix - 1);
  }
};

}  // namespace

Server::Server(store::RedisPool& pool, callout::Callout* callout, Options options)
    : pool_(pool),
      recipient_(pool, callout, options.harvest, store_state_, options.postmaster_domain),
      admin_(pool, callout, options.auth, options.harvest, options.postmaster_domain),
      options_(std::move(options)) {}

Server::~Server() {
  shutdown(std::chrono::milliseconds(0));
  wait();
}

std::string Server::start(const std::string& listen) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const bool separate = !options_.admin_listen.empty();
  if (separate) {
    grpc::ServerBuilder admin;
    admin.AddListeningPort(options_.admin_listen, grpc_tls::server_credentials(options_.tls), &admin_port_);
    admin.RegisterService(&admin_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(std::make_unique<AdminMetricsFactory>());
    admin.experimental().SetInterceptorCreators(std::move(interceptors));
    admin_server_ = admin.BuildAndStart();
    if (!admin_server_ || admin_port_ == 0) {
      admin_server_.reset();
      return "cannot listen on " + options_.admin_listen + " (admin-listen)";
    }
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc_tls::server_credentials(options_.tls), &port_);
  builder.RegisterService(&recipient_);
  if (!separate) {
    builder.RegisterService(&admin_);
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
    interceptors.push_back(std::make_unique<AdminMetricsFactory>());
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    if (admin_server_) {
      admin_server_->Shutdown(std::chrono::system_clock::now());
      admin_server_->Wait();
      admin_server_.reset();
    }
    return "cannot listen on " + listen;
  }
  health_thread_ = std::thread([this] { health_loop(); });
  return "";
}

std::shared_ptr<grpc::Channel> Server::in_process_channel() {
  grpc::Server* target = admin_server_ ? admin_server_.get() : server_.get();
  std::string token = options_.auth ? options_.auth->token() : "";
  return target->experimental().InProcessChannelWithInterceptors(grpc::ChannelArguments(),
                                                                 auth::bearer_interceptors(token));
}

void Server::census() {
  // The job may outlive this Server (queued when it is destroyed): it holds
  // the flag, not `this`.
  if (census_running_->exchange(true)) return;  // the last one is still queued or running
  auto running = census_running_;
  bool queued = pool_.submit([running](store::RedisConn& conn) {
    uint64_t n = 0;
    if (conn.connected() && store::count_catch_all_domains(conn, &n).ok())
      directory_metrics().catch_all_domains().set(static_cast<double>(n));
    *running = false;
  });
  if (!queued) *running = false;
}

void Server::marker_probe() {
  if (marker_running_->exchange(true)) return;
  auto running = marker_running_;
  auto migrate = migrate_marker_;
  auto state = store_state_;
  bool queued = pool_.submit([running, migrate, state](store::RedisConn& conn) {
    bool present = false, migrated = false;
    if (conn.connected() && store::check_marker(conn, migrate->load(), &present, &migrated).ok()) {
      migrate->store(false);
      if (migrated)
        log::info("store_marker_migrated").kv("marker", store::marker_name())
            .kv("message", "domains found without the marker of a configured store: marker set");
      state->observe(present);
    }
    *running = false;
  });
  if (!queued) *running = false;
}

void Server::health_loop() {
  int last = -1;
  auto next_census = std::chrono::steady_clock::now();
  auto next_marker = next_census;
  while (!stop_health_.load()) {
    const int connected = pool_.connected_count();
    int up = connected > 0 ? 1 : 0;
    directory_metrics().redis_up().set(up);
    directory_metrics().redis_connections().set(connected);
    if (up && std::chrono::steady_clock::now() >= next_marker) {
      marker_probe();
      next_marker = std::chrono::steady_clock::now() + kMarkerInterval;
    }
    if (up && std::chrono::steady_clock::now() >= next_census) {
      census();
      next_census = std::chrono::steady_clock::now() + kCensusInterval;
    }
    if (up != last) {
      for (grpc::Server* srv : {server_.get(), admin_server_.get()}) {
        auto* health = srv ? srv->GetHealthCheckService() : nullptr;
        if (!health) continue;
        health->SetServingStatus(up == 1);
        for (const char* svc : {"doorman.v1.RecipientService", "doorman.v1.AdminService"})
          health->SetServingStatus(svc, up == 1);
      }
      last = up;
    }
    for (int i = 0; i < 10 && !stop_health_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void Server::shutdown(std::chrono::milliseconds grace) {
  stop_health_ = true;
  if (health_thread_.joinable()) health_thread_.join();
  const auto deadline = std::chrono::system_clock::now() + grace;
  for (grpc::Server* srv : {server_.get(), admin_server_.get()}) {
    if (!srv) continue;
    if (auto* health = srv->GetHealthCheckService()) health->Shutdown();
    srv->Shutdown(deadline);
  }
}

void Server::wait() {
  if (server_) server_->Wait();
  if (admin_server_) admin_server_->Wait();
  server_.reset();
  admin_server_.reset();
}

}  // namespace doorman::directory::service
