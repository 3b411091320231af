#include "edge/net/connection.h"

#include "common/ip_prefix.h"
#include "common/log.h"
#include "edge/metrics.h"
#include "edge/net/server.h"
#include "edge/proxy/proxy_protocol.h"
#include "edge/tls/tls_context.h"

namespace doorman::edge {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
std::string remote_ip(const asio::ip::tcp::socket& s) {
  error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return a.to_v6().to_v4().to_string();
  return a.to_string();
}
}  // namespace

Connection::Connection(asio::ip::tcp::socket socket, Server& server, size_t context_index, std::string id)
    : socket_(std::move(socket)),
      server_(server),
      context_index_(context_index),
      id_(std::move(id)),
      client_ip_(remote_ip(socket_)),
      session_(server.session_config(), SessionInfo{id_, client_ip_}),
      idle_timer_(socket_.get_executor()),
      started_(std::chrono::steady_clock::now()) {}

Relay& Connection::relay() {
  if (!relay_) {
    relay_ = std::make_unique<Relay>(socket_.get_executor(), server_.pool(context_index_), server_.backend_timeouts(),
                                     server_.config().hostname, &server_.backend_tls(), &server_.backend_limiter());
    relay_->set_session(id_);
  }
  return *relay_;
}

asio::steady_timer& Connection::delay_timer() {
  if (!delay_timer_) delay_timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
  return *delay_timer_;
}

// Every wait on the delay timer goes through here, so release_idle_memory()
// knows when no handler is outstanding.
template <typename Handler>
void Connection::delay_wait(Handler handler) {
  ++delay_waits_;
  delay_timer().async_wait([self = shared_from_this(), handler = std::move(handler)](const error_code& ec) mutable {
    --self->delay_waits_;
    handler(ec);
  });
}

void Connection::start(bool refuse) {
  // Replies are small and come in bursts (pipelining): Nagle plus the
  // client's delayed ACK would add 40 ms to each group.
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket_.non_blocking(true, ignored);
  log::debug("session_start").kv("session", id_).kv("client", client_ip_);
  if (auto* m = edge_metrics()) m->sessions_active.add(1);
  if (refuse) {
    end_reason_ = SessionEnd::kTooManySessions;
    queue_write("421 4.7.0 " + server_.config().hostname + " Error: too many connections\r\n");
    close_after_write_ = true;
    return;
  }
  if (server_.config().proxy_protocol != "off") {
    if (!server_.config().proxy_trusted.contains(client_ip_)) {
      // Only a trusted balancer may say who the client is.
      log::warn("proxy_untrusted").kv("session", id_).kv("peer", client_ip_);
      if (auto* m = edge_metrics()) m->proxy_untrusted.inc();
      end_reason_ = SessionEnd::kProxyInvalid;
      close("PROXY protocol from an untrusted peer");
      return;
    }
    read_proxy_header();
    return;
  }
  greet();
}

void Connection::greet() {
  // IPv6 counts by prefix: a /64 must not give a client 2^64 session budgets.
  ip_key_ = client_identity(client_ip_, static_cast<int>(server_.config().ipv6_client_prefix));
  if (ip_key_.empty()) ip_key_ = client_ip_;
  if (!server_.acquire_ip(ip_key_)) {
    end_reason_ = SessionEnd::kTooManySessions;
    queue_write("421 4.7.0 " + server_.config().hostname + " Error: too many connections from your address\r\n");
    close_after_write_ = true;
    do_write();
    return;
  }
  ip_counted_ = true;
  if (server_.config().greet_pause_ms <= 0 || !proxy_buf_.empty()) {
    perform(session_.start());
    return;
  }
  // postscreen's pregreet test: a real MTA waits for the greeting.
  pregreet_ = true;
  reading_ = true;
  read_some([self = shared_from_this()](const error_code& ec, std::string_view bytes) { self->on_read(ec, bytes); });
  delay_timer().expires_after(std::chrono::milliseconds(server_.config().greet_pause_ms));
  delay_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_ || !self->pregreet_) return;
    self->pregreet_ = false;
    self->perform(self->session_.start());
    // The pregreet read is still waiting for the client's first command:
    // it is now an ordinary read and gets the idle timeout like any other.
    if (self->reading_) self->arm_idle_timer();
  });
}

void Connection::read_proxy_header() {
  bool on = false;
  proxy::Version version = proxy::Version::kAny;
  proxy::parse_mode(server_.config().proxy_protocol, &on, &version);
  proxy::Result r = proxy::parse(proxy_buf_, version);
  if (r.status == proxy::Result::Status::kDone) {
    idle_timer_.cancel();
    if (!r.source_ip.empty()) {
      log::debug("proxy_header").kv("session", id_).kv("peer", client_ip_).kv("client", r.source_ip);
      client_ip_ = r.source_ip;
      session_.set_client_ip(client_ip_);
    }
    std::string rest = proxy_buf_.substr(r.consumed);
    proxy_buf_.clear();
    proxy_buf_.shrink_to_fit();
    if (!rest.empty()) {
      // SMTP bytes arrived with the header, before any greeting: an early talker.
      end_reason_ = SessionEnd::kPregreet;
      queue_write("554 5.5.0 Error: SMTP protocol synchronization\r\n");
      close_after_write_ = true;
      do_write();
      return;
    }
    greet();
    return;
  }
  if (r.status == proxy::Result::Status::kInvalid) {
    log::warn("proxy_header_invalid").kv("session", id_).kv("peer", client_ip_).kv("error", r.error);
    end_reason_ = SessionEnd::kProxyInvalid;
    close("invalid PROXY header");
    return;
  }
  // Need more: read with a short deadline (the balancer sends the header at once).
  idle_timer_.expires_after(std::chrono::seconds(10));
  idle_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_) return;
    self->end_reason_ = SessionEnd::kProxyInvalid;
    self->close("no PROXY header in time");
  });
  read_some([self = shared_from_this()](const error_code& ec, std::string_view bytes) {
    if (self->closed_) return;
    if (ec) {
      self->end_reason_ = SessionEnd::kClientDisconnected;
      self->close(ec.message().c_str());
      return;
    }
    self->proxy_buf_.append(bytes);
    self->read_proxy_header();
  });
}

void Connection::perform(Actions a) {
  if (a.transaction_started) tx_started_ = std::chrono::steady_clock::now();
  if (a.transaction) log_transaction(*a.transaction);
  for (const RcptDecision& d : a.decisions)
    server_.config().decision_log.write(d, DecisionContext{id_, client_ip_});
  if (closed_) return;
  for (const RelayOp& op : a.relay) {
    if (auto* m = edge_metrics(); m && (op.kind == RelayOp::Kind::kChunk || op.kind == RelayOp::Kind::kEnd))
      m->relay_bytes.inc(op.bytes.size());
    if (op.kind == RelayOp::Kind::kEnd) end_started_ = std::chrono::steady_clock::now();
    if (op.kind == RelayOp::Kind::kAbort || op.kind == RelayOp::Kind::kRelease) {
      if (relay_) relay_->perform(op, {});  // nothing to abort or release before the first relayed command
      continue;
    }
    relay().perform(op, [self = shared_from_this()](RelayResult r) {
      asio::post(self->socket_.get_executor(), [self, r = std::move(r)]() mutable { self->on_relay(std::move(r)); });
    });
  }
  if (a.check) start_check(*a.check);
  if (a.start_tls) tls_after_write_ = true;
  if (a.close) {
    close_after_write_ = true;
    if (!end_reason_) end_reason_ = a.end;  // the session says why it closed
  }
  if (delaying_) {
    delayed_ += a.output;  // keep order behind replies already held back
  } else if (a.delay.count() > 0 && !a.output.empty()) {
    delaying_ = true;
    delayed_ = std::move(a.output);
    delay_timer().expires_after(a.delay);
    delay_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->closed_) return;
      self->delaying_ = false;
      std::string held = std::move(self->delayed_);
      self->delayed_.clear();
      self->queue_write(held);
      self->maybe_read();
    });
    return;
  } else {
    queue_write(a.output);
  }
  maybe_read();
}

void Connection::maybe_read() {
  if (closed_ || reading_ || delaying_ || close_after_write_ || session_.waiting() || session_.closed()) return;
  if (out_.size() + writing_.size() > kMaxPendingOutput) return;  // the client is not reading
  reading_ = true;
  arm_idle_timer();
  release_idle_memory();
  read_some([self = shared_from_this()](const error_code& ec, std::string_view bytes) { self->on_read(ec, bytes); });
}

void Connection::release_idle_memory() {
  // Waiting for the client with nothing to write: give back what the last
  // command left behind (a reply buffer, the parser's line). Most sessions
  // spend most of their life here, and an idle session's bytes are what the
  // session limit multiplies (bench/RESULTS.md, issue #16); it costs a
  // malloc or two on the next command.
  if (session_.in_data()) return;  // a message streams through: keep its buffers
  if (out_.empty() && writing_.empty()) {
    std::string().swap(out_);
    std::string().swap(writing_);
  }
  if (delayed_.empty()) std::string().swap(delayed_);
  if (proxy_buf_.empty()) std::string().swap(proxy_buf_);
  if (delay_waits_ == 0) delay_timer_.reset();
  session_.release_idle_memory();
}

void Connection::read_some(std::function<void(const error_code&, std::string_view)> done) {
  if (tls_) {
    tls_->async_read_some(std::move(done));
    return;
  }
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this(), done = std::move(done)](const error_code& ec) mutable {
                       if (ec) {
                         done(ec, {});
                         return;
                       }
                       // One buffer per I/O thread, used only inside this handler.
                       thread_local std::array<char, 16384> buffer;
                       error_code rec;
                       size_t n = self->socket_.read_some(asio::buffer(buffer), rec);
                       if (rec == asio::error::would_block || rec == asio::error::try_again) {
                         self->read_some(std::move(done));
                         return;
                       }
                       done(rec, std::string_view(buffer.data(), rec ? 0 : n));
                     });
}

void Connection::on_read(const error_code& ec, std::string_view bytes) {
  reading_ = false;
  if (closed_) return;
  if (pregreet_ && !ec) {
    pregreet_ = false;
    if (delay_timer_) delay_timer_->cancel();
    log::info("pregreet").kv("session", id_).kv("client", client_ip_);
    end_reason_ = SessionEnd::kPregreet;
    queue_write("554 5.5.0 Error: SMTP protocol synchronization\r\n");
    close_after_write_ = true;
    do_write();
    return;
  }
  if (ec) {
    if (!end_reason_) end_reason_ = ec == asio::error::eof ? SessionEnd::kClientDisconnected : SessionEnd::kReadError;
    close(ec.message().c_str());
    return;
  }
  perform(session_.feed(bytes));
}

void Connection::queue_write(const std::string& bytes) {
  if (closed_) return;
  out_ += bytes;
  do_write();
}

void Connection::do_write() {
  if (closed_ || !writing_.empty()) return;
  if (out_.empty()) {
    if (close_after_write_ && !delaying_) {
      if (tls_) {
        // close_notify, so the client sees a clean end rather than a
        // truncation. The socket is non-blocking: this writes the alert and
        // returns without waiting for the client's.
        tls_->shutdown();
      }
      close("done");
    } else if (tls_after_write_ && !delaying_) start_tls();
    return;
  }
  writing_.swap(out_);
  // A client that stops reading must not hold the session: the write gets
  // the idle timeout too (a read in progress has armed it already).
  if (!reading_) arm_idle_timer();
  // (TlsStream's write handler gets no byte count, asio::async_write's does.)
  auto on_written = [self = shared_from_this()](const error_code& ec, size_t = 0) {
    self->writing_.clear();
    if (self->closed_) return;
    if (ec) {
      self->end_reason_ = SessionEnd::kWriteError;
      self->close(ec.message().c_str());
      return;
    }
    self->do_write();
    self->maybe_read();
  };
  if (tls_) {
    tls_->async_write(writing_, std::move(on_written));
  } else {
    asio::async_write(socket_, asio::buffer(writing_), std::move(on_written));
  }
}

void Connection::start_tls() {
  tls_after_write_ = false;
  TlsServerContext* tls = server_.tls();
  std::shared_ptr<asio::ssl::context> context = tls ? tls->current() : nullptr;
  if (context) tls_ = std::make_unique<TlsStream>(socket_, context);
  if (!tls_ || !tls_->ok()) {
    tls_.reset();
    end_reason_ = SessionEnd::kTlsFailed;
    perform(session_.on_tls_failed());
    return;
  }
  delay_timer().expires_after(std::chrono::seconds(server_.config().tls_handshake_timeout_seconds));
  delay_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_) return;
    if (auto* m = edge_metrics()) m->tls_handshake_failed.inc();
    self->end_reason_ = SessionEnd::kTlsFailed;
    self->close("TLS handshake timeout");
  });
  tls_->async_handshake([self = shared_from_this()](const error_code& ec) {
    if (self->delay_timer_) self->delay_timer_->cancel();
    if (self->closed_) return;
    auto* m = edge_metrics();
    if (ec) {
      if (m) m->tls_handshake_failed.inc();
      log::info("tls_failed").kv("session", self->id_).kv("client", self->client_ip_).kv("error", ec.message());
      self->end_reason_ = SessionEnd::kTlsFailed;
      self->perform(self->session_.on_tls_failed());
      return;
    }
    if (m) m->tls_handshake_ok.inc();
    TlsSessionInfo info = tls_session_info(self->tls_->native_handle());
    log::debug("tls_established")
        .kv("session", self->id_)
        .kv("version", info.version)
        .kv("cipher", info.cipher);
    self->perform(self->session_.on_tls(info.description()));
  });
}

void Connection::start_check(const CheckRequest& request) {
  auto self = shared_from_this();
  auto executor = socket_.get_executor();
  check_started_ = std::chrono::steady_clock::now();
  server_.directory().check(request, id_, client_ip_, [self, executor](CheckResult result) {
    asio::post(executor, [self, result = std::move(result)]() mutable { self->on_check(std::move(result)); });
  });
}

void Connection::on_check(CheckResult result) {
  if (auto* m = edge_metrics()) {
    m->directory_duration.observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - check_started_).count());
    (result.ok ? m->directory_ok : m->directory_error).inc();
  }
  if (closed_) return;
  if (!result.ok) {
    log::warn("directory_error").kv("session", id_).kv("error", result.error);
    perform(session_.on_check_failed());
    return;
  }
  if (log::enabled(log::Level::kDebug)) {
    for (const auto& v : result.verdicts)
      log::debug("verdict").kv("session", id_).kv("code", v.reply.code).kv("source", label(v.source)).kv("reason", v.reason);
  }
  perform(session_.on_verdicts(std::move(result.verdicts)));
}

void Connection::log_transaction(const TransactionSummary& t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - tx_started_);
  log::Line line(log::Level::kInfo, "transaction");
  line.kv("session", id_).kv("client", client_ip_);
  if (log::enabled(log::Level::kDebug)) line.kv("sender", t.sender.empty() ? "<>" : t.sender);
  line.kv("rcpt_accepted", t.accepted)
      .kv("rcpt_rejected", t.rejected)
      .kv("rcpt_deferred", t.deferred)
      .kv("result", t.result)
      .kv("code", t.code)
      .kv("size", t.size)
      .kv("duration_ms", static_cast<int64_t>(ms.count()));
}

void Connection::on_relay(RelayResult result) {
  if (end_started_) {
    if (auto* m = edge_metrics())
      m->relay_duration.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - *end_started_).count());
    end_started_.reset();
  }
  if (closed_) return;
  if (result.status != RelayResult::Status::kOk)
    log::warn("relay_error").kv("session", id_).kv("status", result.status == RelayResult::Status::kUnreachable ? "unreachable"
                                                             : result.status == RelayResult::Status::kBusy     ? "busy"
                                                                                                               : "lost");
  perform(session_.on_relay(std::move(result)));
}

void Connection::arm_idle_timer() {
  idle_timer_.expires_after(std::chrono::seconds(server_.config().idle_timeout_seconds));
  idle_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_) return;
    if (!self->writing_.empty() || self->timed_out_) {
      // Our replies (or the 421 after a timeout) could not be written for a
      // whole timeout: the client is not reading. Nothing more to say.
      self->end_reason_ = SessionEnd::kTimeout;
      self->close("write timeout");
      return;
    }
    if (!self->reading_) return;  // waiting for the directory or a back-end: their own deadlines
    self->end_reason_ = SessionEnd::kTimeout;
    self->timed_out_ = true;
    self->perform(self->session_.on_timeout());
    if (!self->closed_) self->arm_idle_timer();  // bounds the write of the 421
  });
}

void Connection::shutdown() {
  if (closed_) return;
  if (!end_reason_) end_reason_ = SessionEnd::kShutdown;
  perform(session_.on_shutdown());
}

void Connection::force_close() {
  end_reason_ = SessionEnd::kShutdownForced;
  close("grace period over");
}

void Connection::close(const char* reason) {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  idle_timer_.cancel();
  if (delay_timer_) delay_timer_->cancel();
  if (relay_) relay_->abandon();  // an unfinished back-end transaction is abandoned, never completed
  if (ip_counted_) server_.release_ip(ip_key_);
  const SessionStats& s = session_.stats();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
  log::info("session_end")
      .kv("session", id_)
      .kv("client", client_ip_)
      .kv("end", label(end_reason_.value_or(SessionEnd::kServerClosed)))
      .kv("detail", reason)
      .kv("transactions", s.transactions)
      .kv("delivered", s.delivered)
      .kv("bytes_relayed", s.bytes_relayed)
      .kv("rcpt_accepted", s.rcpt_accepted)
      .kv("rcpt_rejected", s.rcpt_rejected)
      .kv("rcpt_deferred", s.rcpt_deferred)
      .kv("errors", s.errors)
      .kv("directory_calls", s.directory_calls)
      .kv("duration_ms", static_cast<int64_t>(ms.count()));
  if (auto* m = edge_metrics()) {
    m->sessions_active.add(-1);
    m->session_ended(end_reason_.value_or(SessionEnd::kServerClosed));
  }
  server_.on_connection_closed(this, context_index_);
}

}  // namespace doorman::edge
