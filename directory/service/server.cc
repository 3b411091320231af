#include "directory/service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

namespace doorman::directory::service {

Server::Server(store::RedisPool& pool, callout::Callout* callout)
    : pool_(pool), recipient_(pool, callout), admin_(pool, callout) {}

Server::~Server() {
  shutdown(std::chrono::milliseconds(0));
  wait();
}

std::string Server::start(const std::string& listen) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(&recipient_);
  builder.RegisterService(&admin_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return "cannot listen on " + listen;
  }
  health_thread_ = std::thread([this] { health_loop(); });
  return "";
}

std::shared_ptr<grpc::Channel> Server::in_process_channel() { return server_->InProcessChannel(grpc::ChannelArguments()); }

void Server::health_loop() {
  int last = -1;
  while (!stop_health_.load()) {
    int up = pool_.connected_count() > 0 ? 1 : 0;
    if (up != last) {
      auto* health = server_->GetHealthCheckService();
      if (health) {
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
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) health->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + grace);
  }
}

void Server::wait() {
  if (server_) server_->Wait();
  server_.reset();
}

}  // namespace doorman::directory::service
