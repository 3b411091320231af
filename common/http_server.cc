#include "common/http_server.h"

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

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
  asio::io_context io{1};
  asio::ip::tcp::acceptor acceptor{io};
  std::map<std::string, Handler> handlers;
  std::thread thread;
  int port = 0;

  struct Session : std::enable_shared_from_this<Session> {
    Session(asio::ip::tcp::socket s, Impl& i) : stream(std::move(s)), impl(i) {}
    beast::tcp_stream stream;
    Impl& impl;
    beast::flat_buffer buffer{8192};
    std::optional<http::request_parser<http::empty_body>> parser;
    http::response<http::string_body> response;

    void read() {
      parser.emplace();
      parser->header_limit(8192);
      parser->body_limit(0);
      stream.expires_after(std::chrono::seconds(30));
      http::async_read(stream, buffer, *parser, [self = shared_from_this()](error_code ec, size_t) {
        if (ec) return self->close();
        self->respond();
      });
    }
    void respond() {
      const auto& req = parser->get();
      std::string target(req.target());
      if (size_t q = target.find('?'); q != std::string::npos) target.resize(q);
      response = {};
      response.version(req.version());
      response.keep_alive(req.keep_alive());
      response.set(http::field::server, "doorman");
      if (req.method() != http::verb::get && req.method() != http::verb::head) {
        response.result(http::status::method_not_allowed);
        response.body() = "method not allowed\n";
      } else if (auto it = impl.handlers.find(target); it != impl.handlers.end()) {
        HttpResponse r = it->second();
        response.result(static_cast<unsigned>(r.status));
        response.set(http::field::content_type, r.content_type);
        if (req.method() == http::verb::get) response.body() = std::move(r.body);
      } else {
        response.result(http::status::not_found);
        response.body() = "not found\n";
      }
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
    acceptor.async_accept([this](error_code ec, asio::ip::tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
      } else {
        std::make_shared<Session>(std::move(s), *this)->read();
      }
      accept();
    });
  }
};

HttpServer::HttpServer() : impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() { stop(); }

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
  impl_->thread = std::thread([this] { run_guarded(impl_->io, "http"); });
  return "";
}

void HttpServer::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->io.stop();
  });
  impl_->thread.join();
}

int HttpServer::port() const { return impl_->port; }

void add_standard_handlers(HttpServer& server, std::function<bool()> ready) {
  server.handle("/metrics", [] {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics::global().render()};
  });
  server.handle("/healthz", [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; });
  server.handle("/readyz", [ready] {
    bool r = ready();
    return HttpResponse{r ? 200 : 503, "text/plain; charset=utf-8", r ? "ready\n" : "not ready\n"};
  });
}

}  // namespace doorman
