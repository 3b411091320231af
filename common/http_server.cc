#include "common/http_server.h"

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>

#include "common/metrics.h"
#include "common/run_guarded.h"

namespace doorman {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

struct HttpServer::Impl {
  explicit Impl(Limits l) : limits(l), io(std::max(1, l.threads)) {}
  Limits limits;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::map<std::string, Handler> handlers;
  RequestHandler all;
  std::vector<std::thread> threads;
  int port = 0;

  struct Session : std::enable_shared_from_this<Session> {
    Session(asio::ip::tcp::socket s, Impl& i) : stream(std::move(s)), impl(i) {}
    beast::tcp_stream stream;
    Impl& impl;
    beast::flat_buffer buffer{8192};
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> response;

    void read() {
      parser.emplace();
      parser->header_limit(static_cast<uint32_t>(impl.limits.header_bytes));
      parser->body_limit(impl.limits.body_bytes);
      stream.expires_after(impl.limits.timeout);
      http::async_read(stream, buffer, *parser, [self = shared_from_this()](error_code ec, size_t) {
        if (ec == http::error::body_limit || ec == http::error::header_limit) return self->too_large();
        if (ec) return self->close();
        self->respond();
      });
    }
    void too_large() {
      response = {};
      response.version(11);
      response.result(http::status::payload_too_large);
      response.keep_alive(false);
      response.set(http::field::server, "doorman");
      response.body() = "request too large\n";
      send();
    }
    HttpResponse dispatch(const http::request<http::string_body>& req) {
      std::string target(req.target());
      if (impl.all) {
        HttpRequest r{std::string(req.method_string()), target, {}, req.body(), ""};
        for (const auto& f : req) {
          std::string name(f.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          r.headers[name] = std::string(f.value());
        }
        error_code ec;
        r.client = stream.socket().remote_endpoint(ec).address().to_string();
        return impl.all(r);
      }
      if (size_t q = target.find('?'); q != std::string::npos) target.resize(q);
      if (req.method() != http::verb::get && req.method() != http::verb::head)
        return HttpResponse{405, "text/plain; charset=utf-8", "method not allowed\n", {}};
      if (auto it = impl.handlers.find(target); it != impl.handlers.end()) return it->second();
      return HttpResponse{404, "text/plain; charset=utf-8", "not found\n", {}};
    }
    void respond() {
      const auto& req = parser->get();
      HttpResponse r = dispatch(req);
      response = {};
      response.version(req.version());
      response.keep_alive(req.keep_alive());
      response.set(http::field::server, "doorman");
      response.result(static_cast<unsigned>(r.status));
      response.set(http::field::content_type, r.content_type);
      for (const auto& [k, v] : r.headers) response.insert(k, v);
      if (req.method() != http::verb::head) response.body() = std::move(r.body);
      send();
    }
    void send() {
      response.prepare_payload();
      http::async_write(stream, response, [self = shared_from_this()](error_code ec, size_t) {
        if (ec || !self->response.keep_alive()) return self->close();
        self->read();
      });
    }
    void close() {
      error_code ignored;
      stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      stream.socket().close(ignored);
    }
  };

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](error_code ec, asio::ip::tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
      } else {
        std::make_shared<Session>(std::move(s), *this)->read();
      }
      accept();
    });
  }
};

HttpServer::HttpServer() : HttpServer(Limits()) {}

HttpServer::HttpServer(Limits limits) : impl_(std::make_unique<Impl>(limits)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::handle_all(RequestHandler h) { impl_->all = std::move(h); }

void HttpServer::handle(const std::string& path, Handler h) { impl_->handlers[path] = std::move(h); }

std::string HttpServer::start(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return "expected host:port, got '" + listen + "'";
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [p, ec0] = std::from_chars(listen.data() + colon + 1, listen.data() + listen.size(), port);
  if (ec0 != std::errc() || p != listen.data() + listen.size() || port > 65535)
    return "bad port in '" + listen + "'";
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return "bad address in '" + listen + "': " + ec.message();
  asio::ip::tcp::endpoint ep(address, static_cast<uint16_t>(port));
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(64, ec);
  if (ec) return "cannot listen on " + listen + ": " + ec.message();
  impl_->port = impl_->acceptor.local_endpoint(ec).port();
  impl_->accept();
  for (int i = 0; i < std::max(1, impl_->limits.threads); ++i)
    impl_->threads.emplace_back([this] { run_guarded(impl_->io, "http"); });
  return "";
}

void HttpServer::stop() {
  if (impl_->threads.empty()) return;
  asio::post(impl_->io, [this] {
    error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
  });
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
}

int HttpServer::port() const { return impl_->port; }

void add_standard_handlers(HttpServer& server, std::function<bool()> ready) {
  server.handle("/metrics", [] {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics::global().render(), {}};
  });
  server.handle("/healthz", [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n", {}}; });
  server.handle("/readyz", [ready] {
    bool r = ready();
    return HttpResponse{r ? 200 : 503, "text/plain; charset=utf-8", r ? "ready\n" : "not ready\n", {}};
  });
}

}  // namespace doorman
