#include "common/http_server.h"

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <mutex>
#include <optional>

#include "common/log.h"
#include "common/metrics.h"
#include "common/run_guarded.h"

namespace doorman {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;
namespace ssl = asio::ssl;

namespace {

// The RFC 2253 subject of the peer's certificate when it verified, else "".
std::string verified_subject(SSL* ssl) {
  if (SSL_get_verify_result(ssl) != X509_V_OK) return "";
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "";
  std::string out;
  if (BIO* bio = BIO_new(BIO_s_mem())) {
    if (X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
      char* data = nullptr;
      long n = BIO_get_mem_data(bio, &data);
      if (n > 0) out.assign(data, static_cast<size_t>(n));
    }
    BIO_free(bio);
  }
  X509_free(cert);
  // A certificate with an empty subject still names someone.
  return out.empty() ? "(empty subject)" : out;
}

bool readable(const std::string& path) { return std::ifstream(path).good(); }

// What identifies a file's version: stat() follows symlinks, so a Kubernetes
// Secret volume swapping its ..data link counts as a change.
std::string file_stamp(const std::string& path) {
  if (path.empty()) return "";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "missing";
  return std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

std::string stamp(const HttpServer::Tls& t) {
  return file_stamp(t.cert_file) + "|" + file_stamp(t.key_file) + "|" + file_stamp(t.client_ca_file);
}

// A server context from the files, or null and *error naming the file at fault.
std::shared_ptr<ssl::context> load_context(const HttpServer::Tls& tls, std::string* error) {
  for (const std::string* f : {&tls.cert_file, &tls.key_file, &tls.client_ca_file})
    if (!f->empty() && !readable(*f)) return *error = "cannot read " + *f, nullptr;
  if (tls.cert_file.empty() || tls.key_file.empty())
    return *error = "TLS needs a certificate file and a key file", nullptr;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                   ec);
  SSL_CTX_set_options(ctx->native_handle(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  ctx->use_certificate_chain_file(tls.cert_file, ec);
  if (ec) return *error = tls.cert_file + ": not a PEM certificate chain (" + ec.message() + ")", nullptr;
  ctx->use_private_key_file(tls.key_file, ssl::context::pem, ec);
  if (ec) return *error = tls.key_file + ": not a PEM private key (" + ec.message() + ")", nullptr;
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1)
    return *error = tls.key_file + ": does not match " + tls.cert_file, nullptr;
  if (!tls.client_ca_file.empty()) {
    ctx->load_verify_file(tls.client_ca_file, ec);
    if (ec) return *error = tls.client_ca_file + ": not a PEM CA certificate (" + ec.message() + ")", nullptr;
    // Ask (verify_peer) but do not require (no verify_fail_if_no_peer_cert):
    // token login stays possible. The CA names tell browsers what to offer.
    ctx->set_verify_mode(ssl::verify_peer, ec);
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx->native_handle(), names);
    // Resumed sessions keep their verified peer; OpenSSL needs an id context.
    static const unsigned char kContext[] = "doorman-http";
    SSL_CTX_set_session_id_context(ctx->native_handle(), kContext, sizeof(kContext) - 1);
  }
  return ctx;
}

}  // namespace

struct HttpServer::Impl {
  explicit Impl(Limits l) : limits(l), io(std::max(1, l.threads)) {}
  Limits limits;
  // TLS: the context new connections get (null: plain HTTP), reloaded by
  // current_tls() when the files change. A connection keeps its own.
  Tls tls_files;
  std::mutex tls_mu;
  std::shared_ptr<ssl::context> tls;
  std::string tls_stamp;
  std::chrono::steady_clock::time_point tls_checked;

  std::shared_ptr<ssl::context> current_tls() {
    std::lock_guard<std::mutex> lock(tls_mu);
    auto now = std::chrono::steady_clock::now();
    if (now - tls_checked < tls_files.reload) return tls;
    tls_checked = now;
    std::string st = stamp(tls_files);
    if (st == tls_stamp) return tls;
    tls_stamp = st;  // a bad version is reported once, not at every check
    std::string error;
    auto fresh = load_context(tls_files, &error);
    if (tls_files.on_load) tls_files.on_load(fresh != nullptr);
    if (fresh) {
      tls = std::move(fresh);
      log::info("http_tls_reloaded").kv("cert_file", tls_files.cert_file);
    } else {
      log::error("http_tls_reload_failed").kv("error", error).kv("kept", "previous certificate");
    }
    return tls;
  }
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io};
  std::map<std::string, Handler> handlers;
  RequestHandler all;
  std::vector<std::thread> threads;
  int port = 0;

  // One connection; Stream is beast::tcp_stream, or an ssl_stream over one
  // (handshake first).
  template <class Stream>
  struct Session : std::enable_shared_from_this<Session<Stream>> {
    static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;
    Session(asio::ip::tcp::socket s, Impl& i)
      requires(!kTls)
        : stream(std::move(s)), impl(i) {}
    Session(asio::ip::tcp::socket s, Impl& i, std::shared_ptr<ssl::context> c)
      requires(kTls)
        : ctx(std::move(c)), stream(std::move(s), *ctx), impl(i) {}
    std::shared_ptr<ssl::context> ctx;  // outlives the stream that uses it
    Stream stream;
    Impl& impl;
    std::string subject;  // of a verified client certificate

    auto& socket() { return beast::get_lowest_layer(stream).socket(); }

    void start() {
      if constexpr (!kTls) {
        read();
      } else {
        beast::get_lowest_layer(stream).expires_after(impl.limits.timeout);
        stream.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
          if (ec) return self->close();
          self->subject = verified_subject(self->stream.native_handle());
          self->read();
        });
      }
    }

    beast::flat_buffer buffer{8192};
    std::optional<http::request_parser<http::string_body>> parser;
    http::response<http::string_body> response;

    void read() {
      parser.emplace();
      parser->header_limit(static_cast<uint32_t>(impl.limits.header_bytes));
      parser->body_limit(impl.limits.body_bytes);
      beast::get_lowest_layer(stream).expires_after(impl.limits.timeout);
      http::async_read(stream, buffer, *parser, [self = this->shared_from_this()](error_code ec, size_t) {
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
        HttpRequest r{std::string(req.method_string()), target, {}, req.body(), "", kTls, subject};
        for (const auto& f : req) {
          std::string name(f.name_string());
          for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          r.headers[name] = std::string(f.value());
        }
        error_code ec;
        r.client = socket().remote_endpoint(ec).address().to_string();
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
      http::async_write(stream, response, [self = this->shared_from_this()](error_code ec, size_t) {
        if (ec || !self->response.keep_alive()) return self->close();
        self->read();
      });
    }
    void close() {
      error_code ignored;
      // No TLS close_notify: the peer sees the connection end either way.
      socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      socket().close(ignored);
    }
  };

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [this](error_code ec, asio::ip::tcp::socket s) {
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
      } else {
        if (auto ctx = tls ? current_tls() : nullptr)
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(std::move(s), *this, std::move(ctx))->start();
        else std::make_shared<Session<beast::tcp_stream>>(std::move(s), *this)->start();
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

std::string HttpServer::enable_tls(const Tls& tls) {
  std::string error;
  auto ctx = load_context(tls, &error);
  if (tls.on_load) tls.on_load(ctx != nullptr);
  if (!ctx) return error;
  std::lock_guard<std::mutex> lock(impl_->tls_mu);
  impl_->tls_files = tls;
  impl_->tls_stamp = stamp(tls);
  impl_->tls_checked = std::chrono::steady_clock::now();
  impl_->tls = std::move(ctx);
  return "";
}

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
