// The directory's gRPC server: RecipientService, AdminService, the standard
// grpc.health.v1 service and reflection, on one listening address.
//
// Health: SERVING while at least one Redis connection of the pool is up,
// NOT_SERVING otherwise (polled every 500 ms), for "" and each service name.
// The same poll sets doorman_directory_redis_up and _redis_connections, and
// every 10 s a census job on the pool recounts the catch-all domains
// (store::count_catch_all_domains -> doorman_directory_catch_all_domains).
// Every second a probe job reads the store's marker (store::check_marker ->
// StoreState: store_configured(), doorman_directory_store_configured, the
// store_not_configured warning); the first probe that reaches Redis also
// migrates an install older than the marker (domains but no marker).
// A server interceptor counts AdminService calls by RPC and status code
// (doorman_directory_admin_requests_total).
// AdminService calls need a bearer token (Options::auth, auth/admin_auth.h;
// none configured = every admin call refused). With Options::admin_listen
// set, AdminService is served by a second grpc::Server on that address only
// (with its own health and reflection), and the main listener carries
// RecipientService and health alone. Options::harvest (harvest/harvest.h)
// turns the harvest defence on for CheckRecipients and Explain. Options::tls
// (common/grpc_tls.h) puts both listeners behind TLS, or mTLS with a client
// CA; plaintext by default. A client certificate does not replace the admin
// bearer token: every client the CA signed (each edge) would be an admin.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/grpc_tls.h"
#include "directory/service/admin_service.h"
#include "directory/service/recipient_service.h"
#include "directory/service/store_state.h"
#include "directory/store/pool.h"

namespace doorman::directory::service {

class Server {
 public:
  struct Options {
    // null: every AdminService call is refused (UNAUTHENTICATED).
    std::shared_ptr<auth::AdminAuth> auth;
    // "" = AdminService on the main listener; else "host:port" (port 0
    // picks a free one) of a listener that serves only AdminService.
    std::string admin_listen;
    // null: no harvest defence (harvest/harvest.h).
    std::shared_ptr<harvest::Harvest> harvest;
    // Both listeners (plaintext when !tls.enabled()).
    grpc_tls::ServerTls tls;
    // Domain of a bare <postmaster> (validated, lower-case; "" = the first
    // guarded domain in sorted order).
    std::string postmaster_domain;
  };

  // `callout` (optional, not owned) verifies callout domains; without it a
  // callout miss stays 450 4.1.1.
  explicit Server(store::RedisPool& pool, callout::Callout* callout = nullptr, Options options = {});
  ~Server();

  // Binds `listen` ("host:port"; port 0 picks a free one), and the admin
  // listener when configured. Returns "" or an error. port() and
  // admin_port() are the bound ports afterwards (the same without a
  // separate admin listener).
  std::string start(const std::string& listen);
  int port() const { return port_; }
  int admin_port() const { return admin_server_ ? admin_port_ : port_; }

  // Whether the store carries its marker (store_state.h): false while it is
  // missing or not known yet. /readyz uses it.
  bool store_configured() const { return store_state_->configured(); }

  // A channel to the AdminService without sockets (for `--apply` at
  // start-up); it carries the configured bearer token.
  std::shared_ptr<grpc::Channel> in_process_channel();

  // Stops accepting, lets in-flight RPCs finish until `grace` runs out, then
  // cancels them. Safe to call twice.
  void shutdown(std::chrono::milliseconds grace);
  void wait();

 private:
  void health_loop();
  void census();
  void marker_probe();

  store::RedisPool& pool_;
  // Before the services, which hold it.
  std::shared_ptr<StoreState> store_state_ = std::make_shared<StoreState>();
  RecipientService recipient_;
  AdminService admin_;
  Options options_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> admin_server_;  // only with options_.admin_listen
  int port_ = 0;
  int admin_port_ = 0;
  std::atomic<bool> stop_health_{false};
  std::thread health_thread_;
  std::shared_ptr<std::atomic<bool>> census_running_ = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<bool>> marker_running_ = std::make_shared<std::atomic<bool>>(false);
  // The start-up migration of the marker runs until one probe got through.
  std::shared_ptr<std::atomic<bool>> migrate_marker_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace doorman::directory::service
