#include "edge/net/relay.h"

#include "edge/metrics.h"

namespace doorman::edge {

namespace asio = boost::asio;

Relay::Relay(asio::any_io_executor executor, BackendPool& pool, const BackendTimeouts& timeouts,
             std::string helo_name, const BackendTls* tls, BackendLimiter* limiter)
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
      conn_->transact(std::move(lines), timeouts_.command, [this, done](bool ok, std::vector<smtp::Reply> replies) {
        if (!ok) return lost(done);
        done(RelayResult{RelayResult::Status::kOk, std::move(replies), false});
      });
      return;
    }
    case RelayOp::Kind::kData:
      if (!conn_) return lost(std::move(done));
      conn_->transact({"DATA"}, timeouts_.data_init, [this, done](bool ok, std::vector<smtp::Reply> replies) {
        if (!ok) return lost(done);
        done(RelayResult{RelayResult::Status::kOk, std::move(replies), false});
      });
      return;
    case RelayOp::Kind::kChunk:
      if (!conn_) return lost(std::move(done));
      conn_->send(op.bytes, 0, timeouts_.data_block, [this, done](bool ok, std::vector<smtp::Reply>) {
        if (!ok) return lost(done);
        done(RelayResult{});
      });
      return;
    case RelayOp::Kind::kEnd:
      if (!conn_) return lost(std::move(done));
      conn_->send(op.bytes + ".\r\n", 1, timeouts_.data_end, [this, done](bool ok, std::vector<smtp::Reply> replies) {
        if (!ok) return lost(done);
        done(RelayResult{RelayResult::Status::kOk, std::move(replies), false});
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
      c->transact({"RSET"}, timeouts_.command, [c, pool](bool ok, std::vector<smtp::Reply> replies) {
        if (ok && replies[0].code == 250) {
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
    pooled->set_session(session_);
    // A pooled connection may have been closed by the back-end meanwhile:
    // then a fresh one to the same back-end replaces it.
    start_mail(pooled, op, done, [this, op, index, done] { open_fresh(op, index, done); });
    return;
  }
  open_fresh(std::move(op), index, std::move(done));
}

void Relay::open_fresh(std::shared_ptr<RelayOp> op, size_t index, Done done) {
  auto c = std::make_shared<BackendConnection>(executor_, timeouts_, helo_name_, tls_);
  c->set_session(session_);
  c->open(op->route[index], [this, c, op, index, done](bool ok) {
    if (!ok) {
      if (auto* m = edge_metrics()) m->backend_connect_failures.inc();
      try_route(op, index + 1, done);
      return;
    }
    start_mail(c, op, done, [this, done] { lost(done); });
  });
}

void Relay::start_mail(std::shared_ptr<BackendConnection> c, std::shared_ptr<RelayOp> op, Done done,
                       std::function<void()> on_io_failure) {
  std::string mail = "MAIL FROM:<" + op->mail_from + ">";
  if (op->size && c->offers_size()) mail += " SIZE=" + std::to_string(*op->size);
  if (op->body_8bit && c->offers_8bitmime()) mail += " BODY=8BITMIME";
  std::vector<std::string> lines{mail};
  for (const auto& r : op->rcpts) lines.push_back("RCPT TO:<" + r + ">");
  const size_t n = op->rcpts.size();
  c->transact(std::move(lines), timeouts_.command,
              [this, c, n, done, on_io_failure](bool ok, std::vector<smtp::Reply> replies) {
                if (!ok) {
                  on_io_failure();
                  return;
                }
                if (abandoned_) {  // the client went away meanwhile
                  c->close();
                  lost(done);
                  return;
                }
                conn_ = c;
                RelayResult r;
                if (replies[0].code < 200 || replies[0].code >= 300) {
                  r.mail_refused = true;
                  r.replies.assign(n, replies[0]);
                  // Without PIPELINING nothing else was sent; with it, the
                  // RCPTs after a refused MAIL got 503s we do not report.
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
