#include "directory/callout/prober.h"

#include <algorithm>

#include "common/log.h"
#include "directory/metrics.h"

namespace doorman::directory::callout {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using Error = SmtpClientStatus::Error;
constexpr size_t kMaxInFlight = 10000;
constexpr std::chrono::milliseconds kQuitTimeout{1000};
constexpr std::chrono::milliseconds kHousekeeping{200};

std::string bracket(const std::string& mailbox) { return "<" + mailbox + ">"; }

}  // namespace

struct Prober::Probe {
  Probe(asio::io_context& io, ProbeRequest r, Done d) : req(std::move(r)), done(std::move(d)), timer(io) {}
  const std::string& route() const { return req.routes[route_index]; }

  ProbeRequest req;
  Done done;
  ProbeResponse out;
  size_t route_index = 0;
  std::shared_ptr<SmtpClientConnection> session;
  bool reused = false;       // the session came from the pool
  bool reopened = false;     // a dead pooled session was replaced already
  bool holds_slot = false;
  bool waiting_slot = false;
  bool rate_limited = false;  // counted once
  bool finished = false;
  asio::steady_timer timer;   // waiting for a slot (deadline) or for tokens
};

Prober::Prober(Settings settings)
    : settings_(std::move(settings)),
      housekeeping_timer_(io_),
      idle_(static_cast<size_t>(std::max(1, settings_.concurrency)), settings_.idle_timeout) {
  tls_.settings = settings_.tls;
  tls_.context = settings_.tls_context;
}

Prober::~Prober() { stop(); }

void Prober::start() {
  if (running_.exchange(true)) return;
  io_.restart();
  stopping_ = false;
  guard_.emplace(io_.get_executor());
  housekeeping();
  thread_ = std::thread([this] { io_.run(); });
}

void Prober::stop() {
  if (!running_.exchange(false)) return;
  asio::post(io_, [this] { abandon_all(); });
  guard_.reset();
  thread_.join();  // returns once the QUITs are answered or timed out
}

bool Prober::submit(ProbeRequest req, Done done) {
  if (!running_) return false;
  if (in_flight_.fetch_add(1) >= kMaxInFlight) {
    in_flight_.fetch_sub(1);
    return false;
  }
  auto p = std::make_shared<Probe>(io_, std::move(req), std::move(done));
  p->out.error = "no route";
  asio::post(io_, [this, p] {
    if (stopping_) {
      p->out.error = "stopping";
      return finish(p);
    }
    active_.insert(p);
    try_route(p);
  });
  return true;
}

std::chrono::milliseconds Prober::left(const ProbePtr& p) const {
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(p->req.deadline - Clock::now()));
}

void Prober::abandon_all() {
  stopping_ = true;
  housekeeping_timer_.cancel();
  for (auto& [route, b] : backends_) b.waiting.clear();
  // Every step of a probe checks stopping_ when its I/O or timer returns.
  for (const auto& p : std::vector<ProbePtr>(active_.begin(), active_.end())) {
    p->timer.cancel();
    if (p->session) p->session->close();
    if (p->waiting_slot) {
      p->waiting_slot = false;
      p->out.error = "stopping";
      finish(p);
    }
  }
  idle_.expire(kQuitTimeout, true);
}

void Prober::housekeeping() {
  if (stopping_) return;
  idle_.expire(kQuitTimeout);
  housekeeping_timer_.expires_after(kHousekeeping);
  housekeeping_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) housekeeping();
  });
}

void Prober::finish(const ProbePtr& p) {
  if (p->finished) return;
  p->finished = true;
  if (stopping_ && p->out.kind != ProbeResponse::Kind::kAnswered) p->out.error = "stopping";
  if (p->holds_slot) release_slot(p, false);
  active_.erase(p);
  in_flight_.fetch_sub(1);
  auto done = std::move(p->done);
  done(std::move(p->out));
}

void Prober::try_route(const ProbePtr& p) {
  if (stopping_) return finish(p);
  if (p->route_index >= p->req.routes.size()) {
    p->out.kind = ProbeResponse::Kind::kFailed;
    return finish(p);
  }
  if (Clock::now() >= p->req.deadline) {
    p->out.error = "probe deadline passed";
    p->out.timed_out = true;
    return finish(p);
  }
  Backend& b = backends_[p->route()];
  if (b.in_use < settings_.concurrency) {
    ++b.in_use;
    p->holds_slot = true;
    return with_session(p);
  }
  p->waiting_slot = true;
  b.waiting.push_back(p);
  p->timer.expires_at(p->req.deadline);
  p->timer.async_wait([this, p](const boost::system::error_code& ec) {
    if (ec || !p->waiting_slot) return;  // got a slot (or stopping) meanwhile
    p->waiting_slot = false;
    auto& waiting = backends_[p->route()].waiting;
    waiting.erase(std::remove(waiting.begin(), waiting.end(), p), waiting.end());
    // A busy back-end is not a failover reason: give up (undecided).
    p->out.error = p->route() + ": no free session slot before the deadline";
    p->out.timed_out = true;
    finish(p);
  });
}

void Prober::release_slot(const ProbePtr& p, bool keep_session) {
  if (!p->holds_slot) return;
  p->holds_slot = false;
  Backend& b = backends_[p->route()];
  --b.in_use;
  if (auto session = std::exchange(p->session, nullptr)) {
    if (!keep_session || !session->usable()) session->close();
    else if (session->transactions >= settings_.session_probes || stopping_) session->quit(kQuitTimeout);
    else idle_.put(std::move(session));
  }
  // The slot goes to the probe that has waited longest.
  while (!stopping_ && b.in_use < settings_.concurrency && !b.waiting.empty()) {
    ProbePtr next = std::move(b.waiting.front());
    b.waiting.pop_front();
    next->waiting_slot = false;
    next->timer.cancel();
    ++b.in_use;
    next->holds_slot = true;
    asio::post(io_, [this, next] { with_session(next); });
  }
}

void Prober::with_session(const ProbePtr& p) {
  if (stopping_) return finish(p);
  p->session = idle_.take(p->route());
  p->reused = p->session != nullptr;
  if (!p->session) return open_session(p);
  with_tokens(p);
}

void Prober::open_session(const ProbePtr& p) {
  p->session = std::make_shared<SmtpClientConnection>(io_.get_executor(), settings_.helo, &tls_);
  p->reused = false;
  SmtpClientTimeouts t{std::min(settings_.connect_timeout, left(p)), std::min(settings_.command_timeout, left(p)),
                       std::min(settings_.command_timeout, left(p))};
  p->session->open(p->route(), t, [this, p](const SmtpClientStatus& s) {
    if (stopping_) return finish(p);
    if (!s.ok()) {
      log::warn("callout_backend_error").kv("backend", p->route()).kv("error", error_name(s.error)).kv("detail", s.detail);
      p->out.error = p->route() + ": " + error_name(s.error) + ": " + s.detail;
      p->out.timed_out = s.error == Error::kTimeout;
      return next_route(p);  // connection-level trouble: failover
    }
    with_tokens(p);
  });
}

void Prober::next_route(const ProbePtr& p) {
  release_slot(p, false);
  ++p->route_index;
  try_route(p);
}

void Prober::with_tokens(const ProbePtr& p) {
  if (stopping_) return finish(p);
  const double burst = std::max(1, settings_.burst);
  const double need = std::min<double>(static_cast<double>(p->req.rcpts.size()), burst);
  Backend& b = backends_[p->route()];
  auto now = Clock::now();
  if (b.refilled == Clock::time_point{}) {
    b.tokens = burst;
  } else {
    double secs = std::chrono::duration<double>(now - b.refilled).count();
    b.tokens = std::min(burst, b.tokens + secs * settings_.rate);
  }
  b.refilled = now;
  if (b.tokens >= need) {
    b.tokens -= need;
    return mail(p);
  }
  auto wait = std::chrono::duration<double>((need - b.tokens) / std::max(0.001, settings_.rate));
  auto until = now + std::chrono::duration_cast<Clock::duration>(wait);
  if (!p->rate_limited) directory_metrics().callout_rate_limited().inc();
  p->rate_limited = true;
  if (until > p->req.deadline) {
    p->out.error = p->route() + ": rate limit: no probe token before the deadline";
    p->out.timed_out = true;
    release_slot(p, true);
    return finish(p);
  }
  p->timer.expires_at(until);
  p->timer.async_wait([this, p](const boost::system::error_code&) { with_tokens(p); });
}

void Prober::mail(const ProbePtr& p) {
  p->session->transact({"MAIL FROM:" + bracket(p->req.sender)}, std::min(settings_.command_timeout, left(p)),
                       [this, p](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> replies) {
                         if (stopping_) return finish(p);
                         if (!s.ok()) {
                           if (p->reused && !p->reopened) {
                             p->reopened = true;  // a pooled session the back-end closed: once more, fresh
                             return open_session(p);
                           }
                           p->out.error = p->route() + ": MAIL: " + error_name(s.error);
                           p->out.timed_out = s.error == Error::kTimeout;
                           return next_route(p);
                         }
                         const int code = replies[0].code;
                         if (code / 100 != 2) {
                           // The back-end answered; it does not want probes: undecided.
                           p->out.error = p->route() + ": MAIL FROM refused: " + std::to_string(code);
                           p->out.timed_out = false;
                           if (code == 421) {
                             release_slot(p, false);
                             return finish(p);
                           }
                           return reset_and_finish(p);
                         }
                         rcpts(p);
                       });
}

void Prober::rcpts(const ProbePtr& p) {
  std::vector<std::string> lines;
  for (const auto& rcpt : p->req.rcpts) lines.push_back("RCPT TO:" + bracket(rcpt));
  p->session->transact(std::move(lines), std::min(settings_.command_timeout, left(p)),
                       [this, p](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> replies) {
                         if (stopping_) return finish(p);
                         ++p->session->transactions;
                         if (!s.ok()) {
                           p->out.error = p->route() + ": RCPT: " + error_name(s.error);
                           p->out.timed_out = s.error == Error::kTimeout;
                           release_slot(p, false);
                           return finish(p);
                         }
                         // A 421 closes the session: what follows it answers nothing.
                         auto closing = std::find_if(replies.begin(), replies.end(),
                                                     [](const smtp::ParsedReply& r) { return r.code == 421; });
                         if (closing != replies.end()) {
                           release_slot(p, false);
                           if (closing + 1 != replies.end()) {
                             p->out.error = p->route() + ": RCPT: 421";
                             return finish(p);
                           }
                         }
                         p->out.replies = std::move(replies);
                         p->out.kind = ProbeResponse::Kind::kAnswered;
                         p->out.backend = p->route();
                         p->out.error.clear();
                         p->out.timed_out = false;
                         if (!p->holds_slot) return finish(p);
                         reset_and_finish(p);
                       });
}

void Prober::reset_and_finish(const ProbePtr& p) {
  p->session->transact({"RSET"}, std::min(settings_.command_timeout, left(p)),
                    [this, p](const SmtpClientStatus& s, std::vector<smtp::ParsedReply> replies) {
                      release_slot(p, s.ok() && replies[0].code / 100 == 2);
                      finish(p);
                    });
}

}  // namespace doorman::directory::callout
