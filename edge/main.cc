// doorman-edge: the Internet-facing SMTP service. See edge/net/server.h and
// edge/session/session.h; `doorman-edge --help` lists the configuration.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "common/http_server.h"
#include "common/lock_graph.h"
#include "common/log.h"
#include "common/metrics.h"
#include "edge/config.h"
#include "edge/directory_client.h"
#include "edge/metrics.h"
#include "edge/net/server.h"
#include "edge/tls/tls_context.h"

int main(int argc, char** argv) {
  using namespace doorman;
  edge::EdgeConfig config;
  std::string help;
  std::string err = edge::parse_config(argc, argv, &config, &help);
  if (!help.empty()) {
    std::cout << help;
    return 0;
  }
  if (!err.empty()) {
    std::cerr << "doorman-edge: " << err << "\n";
    return 2;
  }
  log::Level level = log::Level::kInfo;
  log::parse_level(config.log_level, &level);
  log::set_level(level);
  log::Format format = log::Format::kKeyValue;
  log::parse_format(config.log_format, &format);
  log::set_format(format);
  std::signal(SIGPIPE, SIG_IGN);
  disable_lock_order_checks();

  edge::EdgeMetrics edge_metrics(metrics::global());
  edge::set_edge_metrics(&edge_metrics);
  metrics::global().gauge("doorman_edge_build_info", "Build information; always 1.", {{"version", DOORMAN_VERSION}}).set(1);

  std::unique_ptr<edge::TlsServerContext> tls;
  if (!config.tls_cert_file.empty()) {
    tls = std::make_unique<edge::TlsServerContext>(config.tls_settings(), [](bool ok, double not_after) {
      if (auto* m = edge::edge_metrics()) m->tls_loaded(ok, not_after);
    });
    err = tls->load();
    if (!err.empty()) {
      std::cerr << "doorman-edge: " << err << "\n";
      return 2;
    }
  }

  edge::DirectoryBatcher::Settings batch;
  batch.max_in_flight = static_cast<size_t>(config.directory_batch_in_flight);
  batch.stall_after = std::chrono::milliseconds(config.directory_batch_stall_ms);
  edge::DirectoryClient directory(config.directory, std::chrono::milliseconds(config.directory_timeout_ms),
                                  config.directory_tls(), batch);
  edge::Server server(config, directory, tls.get());
  err = server.set_backend_tls(config.backend_tls_settings());
  if (!err.empty()) {
    std::cerr << "doorman-edge: " << err << "\n";
    return 2;
  }
  err = server.bind();
  if (!err.empty()) {
    std::cerr << "doorman-edge: " << err << "\n";
    return 1;
  }
  HttpServer http;
  if (!config.http_listen.empty()) {
    add_standard_handlers(http, [&server] { return server.ready(); });
    err = http.start(config.http_listen);
    if (!err.empty()) {
      std::cerr << "doorman-edge: http-listen: " << err << "\n";
      return 1;
    }
  }
  server.run();
  // Calls still in flight post their results to the server's io_contexts:
  // let them finish (their deadline bounds this) before those are destroyed.
  directory.wait_idle(std::chrono::milliseconds(config.directory_timeout_ms) + std::chrono::seconds(1));
  http.stop();
  edge::set_edge_metrics(nullptr);
  return 0;
}
