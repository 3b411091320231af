// A small HTTP/1.1 server (Boost.Beast) for operational endpoints: /metrics,
// /healthz, /readyz. Runs on its own thread and io_context, apart from the
// data path. GET/HEAD only; requests are limited to 8 KiB of headers and no
// body; connections time out after 30 s. Not for untrusted networks beyond
// what Prometheus and kubelet need (no TLS, no auth): bind it to the pod IP
// or loopback, and restrict it with a NetworkPolicy.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

namespace doorman {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;

  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void handle(const std::string& path, Handler h);
  // Binds "host:port" and starts the thread. Returns "" or an error.
  std::string start(const std::string& listen);
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The standard handler set: /metrics from the global registry, /healthz
// (200 "ok"), /readyz (200 when `ready()` is true, else 503).
void add_standard_handlers(HttpServer& server, std::function<bool()> ready);

}  // namespace doorman
