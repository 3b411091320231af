#include "edge/net/relay.h"

#include "common/log.h"
#include "edge/metrics.h"

namespace doorman::edge {

namespace asio = boost::asio;

namespace {

std::vector<smtp::Reply> replies_of(const std::vector<smtp::ParsedReply>& parsed) {
  std::vector<smtp::Reply> out;
  out.reserve(parsed.size());
  for (const auto& p : parsed) out.push_back(p.reply());
  return out;
}

}  // namespace

Relay::Relay(asio::any_io_executor executor, BackendPool& pool, const BackendTimeouts& timeouts,
             std::string helo_name, const SmtpClientTls* tls, BackendLimiter* limiter)
    : executor_(std::move(executor)),
      pool_(pool),
      timeouts_(timeouts),
      helo_name_(std::move(helo_name)),
      tls_(tls),
      limiter_(limiter) {}

Relay::~Relay() { close(); }

void Relay::abandon() {
  abandoned_ = true;
  close();
}

void Relay::close() {
  if (conn_) conn_->close();
  conn_.reset();
  release_lease();
}

void Relay::release_lease() {
  if (limiter_ && !lease_.empty()) limiter_->release(lease_);
  lease_.clear();
}

void Relay::lost(Done done) {
  close();
  asio::post(executor_, [done = std::move(done)] { done(RelayResult{RelayResult::Status::kLost, {}, false}); });
}

void Relay::perform(const RelayOp& op, Done done) {
  switch (op.kind) {
    case RelayOp::Kind::kRcpts: {
      auto shared = std::make_shared<RelayOp>(op);
      if (op.open) {
        // A new transaction starts from the route: nothing of an earlier one
        // (a connection, its count on a back-end) carries over.
        close();
        busy_ = false;
        try_route(shared, 0, std::move(done));
        return;
      }
      if (!conn_) return lost(std::move(done));
      std::vector<std::string> lines;
      for (const auto& r : op.rcpts) lines.push_back("RCPT TO:<" + r + ">");
      conn_->transact(std::move(lines), timeouts_.command, [this, done](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> replies) {
        if (!s.ok()) return lost(done);
        done(RelayResult{RelayResult::Status::kOk, replies_of(replies), false});
      });
      return;
    }
    case RelayOp::Kind::kData:
      if (!conn_) return lost(std::move(done));
      conn_->transact({"DATA"}, timeouts_.data_init, [this, done](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> replies) {
        if (!s.ok()) return lost(done);
        done(RelayResult{RelayResult::Status::kOk, replies_of(replies), false});
      });
      return;
    case RelayOp::Kind::kChunk:
      if (!conn_) return lost(std::move(done));
      conn_->send(op.bytes, 0, timeouts_.data_block, [this, done](const SmtpClientStatus& s, std::vector<smtp::ParsedReply>) {
        if (!s.ok()) return lost(done);
        done(RelayResult{});
      });
      return;
    case RelayOp::Kind::kEnd:
      if (!conn_) return lost(std::move(done));
      conn_->send(op.bytes + ".\r\n", 1, timeouts_.data_end, [this, done](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> replies) {
        if (!s.ok()) return lost(done);
        done(RelayResult{RelayResult::Status::kOk, replies_of(replies), false});
      });
      return;
    case RelayOp::Kind::kAbort:
      close();
      return;
    case RelayOp::Kind::kRelease: {
      auto c = std::move(conn_);
      conn_.reset();
      release_lease();
      if (!c || !c->usable()) return;
      BackendPool* pool = &pool_;
      c->transact({"RSET"}, timeouts_.command, [c, pool](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> replies) {
        if (s.ok() && replies[0].code == 250) {
          pool->put(c);
        } else {
          c->close();
        }
      });
      return;
    }
  }
}

void Relay::try_route(std::shared_ptr<RelayOp> op, size_t index, Done done) {
  release_lease();  // the previous back-end of the route was not usable
  if (abandoned_) {  // the client session is over: open nothing more for it
    asio::post(executor_, [done = std::move(done)] { done(RelayResult{RelayResult::Status::kLost, {}, false}); });
    return;
  }
  if (index >= op->route.size()) {
    const auto status = busy_ ? RelayResult::Status::kBusy : RelayResult::Status::kUnreachable;
    busy_ = false;
    asio::post(executor_, [done = std::move(done), status] { done(RelayResult{status, {}, false}); });
    return;
  }
  if (limiter_) {
    if (!limiter_->try_acquire(op->route[index])) {
      busy_ = true;
      try_route(std::move(op), index + 1, std::move(done));
      return;
    }
    lease_ = op->route[index];
  }
  if (auto pooled = pool_.take(op->route[index])) {
    // A pooled connection may have been closed by the back-end meanwhile:
    // then a fresh one to the same back-end replaces it.
    start_mail(pooled, op, done, [this, op, index, done] { open_fresh(op, index, done); });
    return;
  }
  open_fresh(std::move(op), index, std::move(done));
}

void Relay::open_fresh(std::shared_ptr<RelayOp> op, size_t index, Done done) {
  auto c = std::make_shared<SmtpClientConnection>(executor_, helo_name_, tls_);
  c->open(op->route[index], timeouts_.opening(), [this, c, op, index, done](const SmtpClientStatus& status) {
    observe_open(*c, status);
    if (!status.ok()) {
      try_route(op, index + 1, done);
      return;
    }
    start_mail(c, op, done, [this, done] { lost(done); });
  });
}

void Relay::observe_open(const SmtpClientConnection& c, const SmtpClientStatus& status) {
  auto* m = edge_metrics();
  if (status.error == SmtpClientStatus::Error::kTls) {
    log::warn("backend_tls_failed").kv("session", session_).kv("backend", c.key()).kv("error", status.detail);
    if (m) m->backend_tls_failed.inc();
  } else if (!status.ok()) {
    log::warn("backend_unreachable")
        .kv("session", session_)
        .kv("backend", c.key())
        .kv("error", error_name(status.error))
        .kv("detail", status.detail);
  }
  if (!status.ok()) {
    if (m) m->backend_connect_failures.inc();
    return;
  }
  if (c.starttls_refused() != 0) {  // opportunistic: carried on in plaintext
    log::warn("backend_tls_unavailable").kv("session", session_).kv("backend", c.key()).kv("code", c.starttls_refused());
    if (m) m->backend_tls_failed.inc();
  }
  if (c.tls_active() && m) m->backend_tls_ok.inc();
}

void Relay::start_mail(std::shared_ptr<SmtpClientConnection> c, std::shared_ptr<RelayOp> op, Done done,
                       std::function<void()> on_io_failure) {
  std::string mail = "MAIL FROM:<" + op->mail_from + ">";
  if (op->size && c->extensions().size) mail += " SIZE=" + std::to_string(*op->size);
  if (op->body_8bit && c->extensions().eightbitmime) mail += " BODY=8BITMIME";
  std::vector<std::string> lines{mail};
  for (const auto& r : op->rcpts) lines.push_back("RCPT TO:<" + r + ">");
  const size_t n = op->rcpts.size();
  c->transact(std::move(lines), timeouts_.command,
              [this, c, n, done, on_io_failure](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> parsed) {
                if (!s.ok()) {
                  on_io_failure();
                  return;
                }
                if (abandoned_) {  // the client went away meanwhile
                  c->close();
                  lost(done);
                  return;
                }
                conn_ = c;
                std::vector<smtp::Reply> replies = replies_of(parsed);
                RelayResult r;
                if (replies[0].code < 200 || replies[0].code >= 300) {
                  r.mail_refused = true;
                  r.replies.assign(n, replies[0]);
                  // The RCPTs after a refused MAIL got 503s (pipelined or
                  // one by one) that we do not report.
                  // No transaction is open: RSET, back to the pool, and the
                  // back-end's count given back (the session opens afresh).
                  perform(RelayOp(RelayOp::Kind::kRelease), {});
                } else {
                  r.replies.assign(replies.begin() + 1, replies.end());
                }
                done(std::move(r));
              });
}

}  // namespace doorman::edge
