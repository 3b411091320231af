// The directory's gRPC server: RecipientService, AdminService, the standard
// grpc.health.v1 service and reflection, on one listening address.
//
// Health: SERVING while at least one Redis connection of the pool is up,
// NOT_SERVING otherwise (polled every 500 ms), for "" and each service name.
// The same poll sets doorman_directory_redis_up and _redis_connections, and
// every 10 s a census job on the pool recounts the catch-all domains
// (store::count_catch_all_domains -> doorman_directory_catch_all_domains).
// A server interceptor counts AdminService calls by RPC and status code
// (doorman_directory_admin_requests_total).
// No TLS (plaintext, for a cluster network or loopback); the admin API has no
// authentication: expose it only where operators are.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "directory/service/admin_service.h"
#include "directory/service/recipient_service.h"
#include "directory/store/pool.h"

namespace doorman::directory::service {

class Server {
 public:
  // `callout` (optional, not owned) verifies callout domains; without it a
  // callout miss stays 450 4.1.1.
  explicit Server(store::RedisPool& pool, callout::Callout* callout = nullptr);
  ~Server();

  // Binds `listen` ("host:port"; port 0 picks a free one). Returns "" or an
  // error. port() is the bound port afterwards.
  std::string start(const std::string& listen);
  int port() const { return port_; }

  // A channel to this server without sockets (for `--apply` at start-up).
  std::shared_ptr<grpc::Channel> in_process_channel();

  // Stops accepting, lets in-flight RPCs finish until `grace` runs out, then
  // cancels them. Safe to call twice.
  void shutdown(std::chrono::milliseconds grace);
  void wait();

 private:
  void health_loop();
  void census();

  store::RedisPool& pool_;
  RecipientService recipient_;
  AdminService admin_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> stop_health_{false};
  std::thread health_thread_;
  std::shared_ptr<std::atomic<bool>> census_running_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace doorman::directory::service
