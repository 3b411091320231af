// doorman-directory: the recipient directory of Doorman.
//
// Answers the edge's RecipientService.CheckRecipients (one verdict per
// recipient of an RCPT group) and the operators' AdminService, both over
// gRPC, from a Redis database (schema: store/keys.h). Also serves
// grpc.health.v1 (SERVING while Redis is reachable) and reflection.
//
// SECURITY: talks to the edge and to operators over plaintext gRPC; does
// not talk to SMTP clients. The admin API has no authentication: bind it to
// a cluster-internal address. Redis passwords come from an option, the
// environment or a file (--redis-password-file), never from logs.
//
// Start-up errors print one clear message and exit 1; SIGTERM/SIGINT stop
// gracefully (in-flight RPCs get shutdown-grace-seconds) and exit 0.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/log.h"
#include "common/options.h"
#include "directory/apply/apply.h"
#include "directory/service/server.h"
#include "directory/store/pool.h"

namespace {

using namespace doorman;

struct Config {
  std::string listen = "127.0.0.1:50051";
  std::string redis_host = "127.0.0.1";
  int64_t redis_port = 6379;
  std::string redis_password;
  std::string redis_password_file;
  int64_t redis_db = 0;
  int64_t redis_timeout_ms = 1000;
  int64_t redis_connections = 4;
  std::string log_level = "info";
  std::string apply;
  int64_t shutdown_grace_seconds = 10;
};

void add_options(Options& o, Config& c) {
  o.add_string("listen", &c.listen, "gRPC listen address host:port (RecipientService, AdminService, health)");
  o.add_string("redis-host", &c.redis_host, "Redis host name or address");
  o.add_int("redis-port", &c.redis_port, 1, 65535, "Redis TCP port");
  o.add_string("redis-password", &c.redis_password, "Redis AUTH password (\"\" = no AUTH)");
  o.add_string("redis-password-file", &c.redis_password_file,
               "file holding the Redis password (first line); overrides redis-password");
  o.add_int("redis-db", &c.redis_db, 0, 15, "Redis database number (SELECT)");
  o.add_int("redis-timeout-ms", &c.redis_timeout_ms, 10, 60000, "Redis connect and command timeout, milliseconds");
  o.add_int("redis-connections", &c.redis_connections, 1, 64, "Redis connections (one worker thread each)");
  o.add_string("log-level", &c.log_level, "log level: debug, info, warn or error");
  o.add_string("apply", &c.apply, "domains YAML applied at start-up, as 'doormanctl apply -f' (\"\" = none)");
  o.add_int("shutdown-grace-seconds", &c.shutdown_grace_seconds, 0, 3600,
            "on SIGTERM/SIGINT, seconds in-flight RPCs get before they are cancelled");
}

int run(int argc, char** argv) {
  Config c;
  Options options("doorman-directory", "DOORMAN_DIRECTORY",
                  "The Doorman recipient directory: recipient verdicts and admin API over gRPC, backed by Redis.");
  add_options(options, c);
  std::string err = options.parse(argc, argv);
  if (options.help_requested()) {
    std::cout << options.help();
    return 0;
  }
  if (err.empty() && !options.positional().empty()) err = "unexpected argument '" + options.positional()[0] + "'";
  log::Level level;
  if (err.empty() && !log::parse_level(c.log_level, &level)) err = "option log-level: unknown level '" + c.log_level + "'";
  if (!err.empty()) {
    std::cerr << "doorman-directory: " << err << "\n";
    return 2;
  }
  log::set_level(level);
  if (!c.redis_password_file.empty()) {
    std::ifstream f(c.redis_password_file);
    if (!f || !std::getline(f, c.redis_password)) {
      std::cerr << "doorman-directory: cannot read redis-password-file " << c.redis_password_file << "\n";
      return 1;
    }
    while (!c.redis_password.empty() && (c.redis_password.back() == '\r' || c.redis_password.back() == ' '))
      c.redis_password.pop_back();
  }
  directory::apply::Config apply_config;
  if (!c.apply.empty()) {
    std::vector<std::string> errors;
    if (!directory::apply::load(c.apply, &apply_config, &errors)) {
      for (const auto& e : errors) std::cerr << "doorman-directory: " << e << "\n";
      return 1;
    }
  }

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  directory::store::RedisPool::Settings ps;
  ps.redis.host = c.redis_host;
  ps.redis.port = static_cast<int>(c.redis_port);
  ps.redis.password = c.redis_password;
  ps.redis.db = static_cast<int>(c.redis_db);
  ps.redis.timeout = std::chrono::milliseconds(c.redis_timeout_ms);
  ps.connections = static_cast<int>(c.redis_connections);
  directory::store::RedisPool pool(ps);
  pool.start();

  directory::service::Server server(pool);
  err = server.start(c.listen);
  if (!err.empty()) {
    std::cerr << "doorman-directory: " << err << "\n";
    pool.stop();
    return 1;
  }
  if (!c.apply.empty()) {
    auto stub = doorman::v1::AdminService::NewStub(server.in_process_channel());
    std::ostringstream out, errs;
    int rc = directory::apply::apply(*stub, apply_config, false, {out, errs, std::chrono::milliseconds(30000)});
    std::istringstream lines(out.str());
    for (std::string line; std::getline(lines, line);) log::info("apply").kv("file", c.apply).kv("change", line);
    std::istringstream elines(errs.str());
    for (std::string line; std::getline(elines, line);) log::warn("apply").kv("file", c.apply).kv("message", line);
    if (rc != 0) {
      std::cerr << "doorman-directory: applying " << c.apply << " failed\n";
      server.shutdown(std::chrono::milliseconds(0));
      server.wait();
      pool.stop();
      return 1;
    }
  }
  std::string addr = c.listen;
  if (auto colon = addr.rfind(':'); colon != std::string::npos) addr = addr.substr(0, colon + 1) + std::to_string(server.port());
  log::info("listening").kv("addr", addr).kv("redis", c.redis_host + ":" + std::to_string(c.redis_port));

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::info("stopping").kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT").kv("grace_seconds", c.shutdown_grace_seconds);
  server.shutdown(std::chrono::seconds(c.shutdown_grace_seconds));
  server.wait();
  pool.stop();
  log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "doorman-directory: " << e.what() << "\n";
    return 1;
  }
}
