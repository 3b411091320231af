#include "common/smtp_client_connection.h"

namespace doorman {

namespace asio = boost::asio;
using boost::system::error_code;
using Error = SmtpClientStatus::Error;

const char* error_name(Error e) {
  switch (e) {
    case Error::kNone: return "none";
    case Error::kConnect: return "connect";
    case Error::kTimeout: return "timeout";
    case Error::kIo: return "io";
    case Error::kRefused: return "refused";
    case Error::kTls: return "tls";
    case Error::kProtocol: return "protocol";
  }
  return "?";
}

std::shared_ptr<asio::ssl::context> make_client_context(const TlsClientSettings& tls, std::string* error) {
  error->clear();
  if (tls.mode == TlsClientSettings::Mode::kNone) return nullptr;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  if (std::string err = configure_client_context(ctx->native_handle(), tls); !err.empty()) {
    *error = err;
    return nullptr;
  }
  return ctx;
}

namespace {

smtp::ClientTls client_tls(const SmtpClientTls* tls) {
  if (!tls || !tls->context) return smtp::ClientTls::kNone;
  switch (tls->settings.mode) {
    case TlsClientSettings::Mode::kNone: return smtp::ClientTls::kNone;
    case TlsClientSettings::Mode::kOpportunistic: return smtp::ClientTls::kOpportunistic;
    case TlsClientSettings::Mode::kRequired: return smtp::ClientTls::kRequired;
  }
  return smtp::ClientTls::kNone;
}

SmtpClientStatus from_failure(const smtp::Client::Event& e) {
  using F = smtp::Client::Failure;
  Error error = Error::kProtocol;
  if (e.failure == F::kRefused) error = Error::kRefused;
  if (e.failure == F::kTls) error = Error::kTls;
  return {error, e.detail};
}

}  // namespace

SmtpClientConnection::SmtpClientConnection(asio::any_io_executor executor, std::string helo_name,
                                           const SmtpClientTls* tls)
    : socket_(executor),
      tls_(tls),
      resolver_(executor),
      timer_(executor),
      client_(std::move(helo_name), client_tls(tls)) {}

void SmtpClientConnection::close() {
  broken_ = true;
  error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  resolver_.cancel();
  timer_.cancel();
}

void SmtpClientConnection::arm(std::chrono::milliseconds timeout) {
  auto self = shared_from_this();
  const uint64_t armed = ++timer_generation_;
  timer_.expires_after(timeout);
  timer_.async_wait([self, armed](const error_code& ec) {
    // A step that ended (or a newer one) while this expiry was queued is not timed out.
    if (ec || self->broken_ || armed != self->timer_generation_) return;
    self->timed_out_ = true;
    self->close();  // pending I/O fails and reports the timeout
  });
}

SmtpClientStatus SmtpClientConnection::io_error(const error_code& ec) const {
  if (timed_out_) return {Error::kTimeout, "timed out"};
  if (ec == asio::error::eof) return {Error::kIo, "connection closed by the server"};
  return {Error::kIo, ec ? ec.message() : std::string("connection closed")};
}

void SmtpClientConnection::finish(SmtpClientStatus status, std::vector<smtp::ParsedReply> replies) {
  ++timer_generation_;
  if (!status.ok()) close();
  else timer_.cancel();
  // Taken out before the call: a callback may start the next step.
  if (auto done = std::exchange(open_done_, nullptr)) {
    done(status);
    return;
  }
  if (auto done = std::exchange(replies_done_, nullptr)) done(status, std::move(replies));
}

void SmtpClientConnection::open(const std::string& host_port, const SmtpClientTimeouts& timeouts, Done done) {
  key_ = host_port;
  open_done_ = std::move(done);
  size_t colon = host_port.rfind(':');
  std::string host = host_port.substr(0, colon);
  std::string port = colon == std::string::npos ? "25" : host_port.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  host_ = host;
  if (host.empty() || port.empty()) return finish({Error::kConnect, "bad route " + host_port});
  step_timeout_ = timeouts.command;
  arm(timeouts.connect);
  auto self = shared_from_this();
  resolver_.async_resolve(host, port, [self, timeouts](const error_code& ec, asio::ip::tcp::resolver::results_type r) {
    if (ec || self->broken_) {
      return self->finish(self->timed_out_ ? SmtpClientStatus{Error::kTimeout, "resolve timed out"}
                                           : SmtpClientStatus{Error::kConnect, "resolve: " + ec.message()});
    }
    asio::async_connect(self->socket_, r, [self, timeouts](const error_code& ec2, const asio::ip::tcp::endpoint&) {
      if (ec2 || self->broken_) {
        return self->finish(self->timed_out_ ? SmtpClientStatus{Error::kTimeout, "connect timed out"}
                                             : SmtpClientStatus{Error::kConnect, ec2.message()});
      }
      error_code ignored;  // a peer that reset already fails at the greeting
      self->socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
      self->arm(timeouts.greeting);
      self->client_.start();
      self->step();
    });
  });
}

void SmtpClientConnection::transact(std::vector<std::string> lines, std::chrono::milliseconds timeout,
                                    RepliesDone done) {
  replies_done_ = std::move(done);
  if (broken_) return finish({Error::kIo, "connection closed"});
  step_timeout_ = timeout;
  client_.transact(std::move(lines));
  step();
}

void SmtpClientConnection::send(std::string bytes, size_t replies, std::chrono::milliseconds timeout,
                                RepliesDone done) {
  replies_done_ = std::move(done);
  if (broken_) return finish({Error::kIo, "connection closed"});
  step_timeout_ = timeout;
  client_.send(std::move(bytes), replies);
  step();
}

void SmtpClientConnection::quit(std::chrono::milliseconds timeout) {
  if (!usable()) return close();
  auto self = shared_from_this();
  transact({"QUIT"}, timeout, [self](const SmtpClientStatus&, std::vector<smtp::ParsedReply>) { self->close(); });
}

// One turn of the loop: write what the client wants written, act on its
// event, or read when it waits for a reply.
void SmtpClientConnection::step() {
  if (broken_) return finish(io_error({}));
  if (client_.has_output()) {
    outbuf_ = client_.take_output();
    arm(step_timeout_);  // every write starts a step with its own timeout
    auto self = shared_from_this();
    auto written = [self](const error_code& ec, size_t) {
      if (ec || self->broken_) return self->finish(self->io_error(ec));
      self->step();
    };
    if (tls_stream_) asio::async_write(*tls_stream_, asio::buffer(outbuf_), written);
    else asio::async_write(socket_, asio::buffer(outbuf_), written);
    return;
  }
  smtp::Client::Event e = client_.take_event();
  using Kind = smtp::Client::Event::Kind;
  switch (e.kind) {
    case Kind::kStartTls: return handshake();
    case Kind::kOpen: return finish({});
    case Kind::kReplies: return finish({}, std::move(e.replies));
    case Kind::kFailed: return finish(from_failure(e));
    case Kind::kNone: break;
  }
  if (!client_.wants_input()) return finish({Error::kProtocol, "client stalled"});  // a broken invariant
  auto self = shared_from_this();
  auto got = [self](const error_code& ec, size_t n) {
    if (ec || self->broken_) return self->finish(self->io_error(ec));
    self->client_.feed(std::string_view(self->inbuf_.data(), n));
    self->step();
  };
  if (tls_stream_) tls_stream_->async_read_some(asio::buffer(inbuf_), got);
  else socket_.async_read_some(asio::buffer(inbuf_), got);
}

void SmtpClientConnection::handshake() {
  tls_stream_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, *tls_->context);
  prepare_client_ssl(tls_stream_->native_handle(), tls_->settings, host_);
  arm(step_timeout_);
  auto self = shared_from_this();
  tls_stream_->async_handshake(asio::ssl::stream_base::client, [self](const error_code& ec) {
    if (self->broken_) return self->finish({Error::kTls, self->timed_out_ ? "TLS handshake timed out" : "closed"});
    if (ec) return self->finish({Error::kTls, tls_error_text(self->tls_stream_->native_handle())});
    self->client_.tls_done(true);
    self->step();
  });
}

std::shared_ptr<SmtpClientConnection> SmtpClientPool::take(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  auto now = std::chrono::steady_clock::now();
  while (!it->second.empty()) {
    auto c = std::move(it->second.back());
    it->second.pop_back();
    if (c->usable() && now - c->idle_since < idle_timeout_) return c;
    c->close();
  }
  return nullptr;
}

void SmtpClientPool::put(std::shared_ptr<SmtpClientConnection> c) {
  if (!c->usable()) return;
  auto& q = idle_[c->key()];
  c->idle_since = std::chrono::steady_clock::now();
  q.push_back(std::move(c));
  while (q.size() > max_idle_) {
    q.front()->close();
    q.pop_front();
  }
}

void SmtpClientPool::expire(std::chrono::milliseconds quit_timeout, bool all) {
  auto now = std::chrono::steady_clock::now();
  for (auto& [key, q] : idle_) {
    while (!q.empty() && (all || now - q.front()->idle_since >= idle_timeout_)) {
      q.front()->quit(quit_timeout);
      q.pop_front();
    }
  }
}

size_t SmtpClientPool::idle() const {
  size_t n = 0;
  for (const auto& [k, q] : idle_) n += q.size();
  return n;
}

}  // namespace doorman
