#include "edge/net/server.h"

#include <csignal>
#include <cstdio>
#include <thread>

#include "common/log.h"
#include "common/run_guarded.h"
#include "edge/metrics.h"
#include "edge/net/connection.h"

namespace doorman::edge {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
size_t thread_count(int64_t configured) {
  if (configured > 0) return static_cast<size_t>(configured);
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}
}  // namespace

Server::Server(const EdgeConfig& config, DirectoryClient& directory, TlsServerContext* tls)
    : config_(config),
      session_config_(config.session()),
      backend_timeouts_(config.backend_timeouts()),
      backend_limiter_(config.backend_max_connections),
      directory_(directory),
      tls_(tls),
      contexts_([&] {
        std::vector<std::unique_ptr<Context>> v;
        for (size_t i = 0; i < thread_count(config.threads); ++i) v.push_back(std::make_unique<Context>(static_cast<size_t>(config.backend_pool_max_idle),
                                                std::chrono::seconds(config.backend_pool_idle_seconds)));
        return v;
      }()),
      acceptor_(contexts_[0]->io),
      signals_(contexts_[0]->io, SIGTERM, SIGINT),
      grace_timer_(contexts_[0]->io) {
  for (auto& c : contexts_) guards_.push_back(asio::make_work_guard(c->io));
  session_config_.observer = edge_metrics();
  session_config_.starttls = tls_ != nullptr;
}

Server::~Server() = default;

std::string Server::set_backend_tls(const TlsClientSettings& settings) {
  backend_tls_.settings = settings;
  std::string error;
  backend_tls_.context = make_client_context(settings, &error);
  return error;
}

std::string Server::bind() {
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(config_.listen, &host, &port)) return "bad listen address " + config_.listen;
  error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return "bad listen address " + config_.listen + ": " + ec.message();
  asio::ip::tcp::endpoint ep(address, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on " + config_.listen + ": " + ec.message();
  return "";
}

uint16_t Server::port() const {
  error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void Server::run() {
  signals_.async_wait([this](const error_code& ec, int sig) {
    if (ec) return;
    log::info("signal").kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    begin_stop();
  });
  do_accept();
  ready_ = true;
  log::info("listening").kv("addr", config_.listen).kv("port", static_cast<int>(port()))
      .kv("threads", static_cast<int64_t>(contexts_.size())).kv("directory", config_.directory)
      .kv("directory_transport", config_.directory_tls_ca_file.empty()       ? "plaintext"
                                 : config_.directory_tls_cert_file.empty() ? "tls"
                                                                           : "mtls");
  std::vector<std::thread> threads;
  auto count = [] {
    if (auto* m = edge_metrics()) m->handler_exceptions.inc();
  };
  for (size_t i = 1; i < contexts_.size(); ++i)
    threads.emplace_back([this, i, count] { run_guarded(contexts_[i]->io, "io", count); });
  run_guarded(contexts_[0]->io, "io", count);
  for (auto& t : threads) t.join();
  log::info("stopped");
}

void Server::stop() {
  asio::post(contexts_[0]->io, [this] { begin_stop(); });
}

void Server::do_accept() {
  size_t index = next_context_;
  next_context_ = (next_context_ + 1) % contexts_.size();
  acceptor_.async_accept(contexts_[index]->io, [this, index](const error_code& ec, asio::ip::tcp::socket socket) {
    if (stopping_) return;
    if (ec) {
      log::warn("accept_error").kv("error", ec.message());
    } else {
      bool refuse = sessions_.load() >= config_.max_sessions;
      sessions_.fetch_add(1);
      char id[24];
      std::snprintf(id, sizeof id, "%llx", static_cast<unsigned long long>(next_id_.fetch_add(1)));
      auto conn = std::make_shared<Connection>(std::move(socket), *this, index, id);
      Context& ctx = *contexts_[index];
      asio::post(ctx.io, [&ctx, conn, refuse] {
        ctx.connections.insert(conn);
        conn->start(refuse);
      });
    }
    do_accept();
  });
}

void Server::on_connection_closed(Connection* c, size_t context_index) {
  Context& ctx = *contexts_[context_index];
  for (auto it = ctx.connections.begin(); it != ctx.connections.end(); ++it) {
    if (it->get() == c) {
      ctx.connections.erase(it);
      break;
    }
  }
  if (sessions_.fetch_sub(1) == 1) asio::post(contexts_[0]->io, [this] { check_stopped(); });
}

bool Server::acquire_ip(const std::string& ip) {
  std::lock_guard<std::mutex> lock(ip_mu_);
  int64_t& n = sessions_per_ip_[ip];
  if (n >= config_.max_sessions_per_ip) {
    if (n == 0) sessions_per_ip_.erase(ip);
    return false;
  }
  ++n;
  return true;
}

void Server::release_ip(const std::string& ip) {
  std::lock_guard<std::mutex> lock(ip_mu_);
  auto it = sessions_per_ip_.find(ip);
  if (it != sessions_per_ip_.end() && --it->second <= 0) sessions_per_ip_.erase(it);
}

void Server::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  ready_ = false;
  if (auto* m = edge_metrics()) m->draining.set(1);
  error_code ignored;
  acceptor_.close(ignored);
  signals_.cancel(ignored);
  log::info("draining").kv("sessions", sessions_.load()).kv("grace_seconds", config_.shutdown_grace_seconds);
  for (auto& c : contexts_) {
    Context* ctx = c.get();
    asio::post(ctx->io, [ctx] {
      auto copy = ctx->connections;
      for (auto& conn : copy) conn->shutdown();
    });
  }
  grace_timer_.expires_after(std::chrono::seconds(config_.shutdown_grace_seconds));
  grace_timer_.async_wait([this](const error_code& ec) {
    if (ec) return;
    log::warn("grace_period_over").kv("sessions", sessions_.load());
    for (auto& c : contexts_) {
      Context* ctx = c.get();
      asio::post(ctx->io, [ctx] {
        auto copy = ctx->connections;
        for (auto& conn : copy) conn->force_close();
      });
    }
  });
  check_stopped();
}

void Server::check_stopped() {
  if (!stopping_ || sessions_.load() != 0) return;
  grace_timer_.cancel();
  for (auto& g : guards_) g.reset();
}

}  // namespace doorman::edge
