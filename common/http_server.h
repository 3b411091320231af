// A small HTTP/1.1 server (Boost.Beast) for operational endpoints: /metrics,
// /healthz, /readyz, and the directory's web console (handle_all). Runs on
// threads and an io_context of its own, apart from the data path. By default
// GET/HEAD only, requests limited to 8 KiB of headers and no body, and
// connections time out after 30 s; Limits raise these for a server that
// takes bodies (a request over a limit gets 413 and the connection closes).
// Not for untrusted networks beyond what Prometheus and kubelet need (no
// auth): bind it to the pod IP or loopback, and restrict it with a
// NetworkPolicy; handle_all users bring their own authentication.
//
// TLS (enable_tls, the web console): HTTPS only on that listener, TLS 1.2
// or newer. With a client CA file, the server asks for a client certificate
// but does not require one; a certificate that is presented must chain to
// that CA or the handshake fails. The verified certificate's subject reaches
// the handler (HttpRequest::client_cert_subject). At most once per
// Tls::reload a new connection stats the files (following symlinks, as
// Kubernetes Secret volumes swap a ..data link) and, when one changed, loads
// them again; files that fail to load are logged (and told to Tls::on_load),
// and the previous certificate stays in use. A connection keeps the context
// it started with.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace doorman {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string client;  // peer address
  bool tls = false;     // arrived over TLS (enable_tls)
  // The subject (RFC 2253, e.g. "CN=alice,O=Example") of a client
  // certificate that chained to the client CA; "" when none was presented.
  std::string client_cert_subject;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;
  using RequestHandler = std::function<HttpResponse(const HttpRequest&)>;

  struct Limits {
    size_t header_bytes = 8192;
    uint64_t body_bytes = 0;
    std::chrono::seconds timeout{30};
    int threads = 1;  // handlers may block: one request per thread at a time
  };

  HttpServer();
  explicit HttpServer(Limits limits);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // GET/HEAD of exactly `path` (the query is ignored).
  void handle(const std::string& path, Handler h);
  // Every request, any method and path (instead of the handle() table).
  void handle_all(RequestHandler h);
  struct Tls {
    std::string cert_file;       // PEM certificate chain
    std::string key_file;        // PEM private key
    std::string client_ca_file;  // "" = no client certificates asked for
    std::chrono::seconds reload{60};  // how often the files are checked for changes
    std::function<void(bool ok)> on_load;  // every load: at enable_tls, then on a change
  };
  // Serves HTTPS instead of HTTP; call before start(). Reads the files:
  // returns "" or an error naming the file at fault.
  std::string enable_tls(const Tls& tls);
  // Binds "host:port" and starts the threads. Returns "" or an error.
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
