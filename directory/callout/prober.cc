#include "directory/callout/prober.h"

#include <algorithm>

#include "common/log.h"
#include "directory/metrics.h"

namespace doorman::directory::callout {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxQueue = 10000;

std::string bracket(const std::string& mailbox) { return "<" + mailbox + ">"; }

}  // namespace

Prober::Prober(Settings settings) : settings_(std::move(settings)) {}
Prober::~Prober() { stop(); }

void Prober::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  for (int i = 0; i < std::max(1, settings_.threads); ++i) threads_.emplace_back([this] { worker(); });
  housekeeper_ = std::thread([this] { housekeeping(); });
}

void Prober::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  limit_cv_.notify_all();
  house_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  if (housekeeper_.joinable()) housekeeper_.join();
  std::vector<std::unique_ptr<ProbeSession>> sessions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [route, b] : backends_)
      for (auto& s : b.idle) sessions.push_back(std::move(s));
    backends_.clear();
  }
  for (auto& s : sessions) s->quit();
}

bool Prober::submit(ProbeRequest req, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || threads_.empty() || queue_.size() >= kMaxQueue) return false;
    queue_.push_back({std::move(req), std::move(done)});
  }
  cv_.notify_one();
  return true;
}

void Prober::worker() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    ProbeResponse r;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stopping_;
    }
    if (stopping) r.error = "stopping";
    else r = run(job.req);
    job.done(std::move(r));
  }
}

void Prober::housekeeping() {
  for (;;) {
    std::vector<std::unique_ptr<ProbeSession>> expired;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (house_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stopping_; })) return;
      auto now = Clock::now();
      for (auto& [route, b] : backends_) {
        auto it = std::partition(b.idle.begin(), b.idle.end(),
                                 [&](const auto& s) { return now - s->last_used < settings_.idle_timeout; });
        for (auto e = it; e != b.idle.end(); ++e) expired.push_back(std::move(*e));
        b.idle.erase(it, b.idle.end());
      }
    }
    for (auto& s : expired) s->quit();
  }
}

ProbeResponse Prober::run(const ProbeRequest& req) {
  ProbeResponse out;
  out.error = "no route";
  for (const auto& route : req.routes) {
    if (Clock::now() >= req.deadline) {
      out.error = "probe deadline passed";
      out.timed_out = true;
      break;
    }
    if (run_route(req, route, &out)) return out;
  }
  out.kind = ProbeResponse::Kind::kFailed;
  return out;
}

bool Prober::acquire_slot(const std::string& route, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  Backend& b = backends_[route];
  if (!limit_cv_.wait_until(lock, deadline, [&] { return stopping_ || b.in_use < settings_.concurrency; }))
    return false;
  if (stopping_) return false;
  ++b.in_use;
  return true;
}

void Prober::release_slot(const std::string& route, std::unique_ptr<ProbeSession> session) {
  std::unique_ptr<ProbeSession> quit;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Backend& b = backends_[route];
    --b.in_use;
    if (session && session->is_open()) {
      if (session->probes >= settings_.session_probes || stopping_) quit = std::move(session);
      else b.idle.push_back(std::move(session));
    }
  }
  limit_cv_.notify_all();
  if (quit) quit->quit();
}

bool Prober::acquire_tokens(const std::string& route, int n, Clock::time_point deadline) {
  const double burst = std::max(1, settings_.burst);
  const double need = std::min<double>(n, burst);
  std::unique_lock<std::mutex> lock(mu_);
  Backend& b = backends_[route];
  bool waited = false;
  for (;;) {
    if (stopping_) return false;
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
      return true;
    }
    auto wait = std::chrono::duration<double>((need - b.tokens) / std::max(0.001, settings_.rate));
    auto until = now + std::chrono::duration_cast<Clock::duration>(wait);
    if (!waited) directory_metrics().callout_rate_limited().inc();
    waited = true;
    if (until > deadline) return false;
    limit_cv_.wait_until(lock, until);
  }
}

std::unique_ptr<ProbeSession> Prober::take_idle(const std::string& route) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& idle = backends_[route].idle;
  if (idle.empty()) return nullptr;
  auto s = std::move(idle.back());
  idle.pop_back();
  return s;
}

bool Prober::run_route(const ProbeRequest& req, const std::string& route, ProbeResponse* out) {
  if (!acquire_slot(route, req.deadline)) {
    out->error = route + ": no free session slot before the deadline";
    out->timed_out = true;
    return true;  // a busy back-end is not a failover reason: give up (undecided)
  }
  auto left = [&] {
    return std::max(std::chrono::milliseconds(1),
                    std::chrono::duration_cast<std::chrono::milliseconds>(req.deadline - Clock::now()));
  };
  std::unique_ptr<ProbeSession> s = take_idle(route);
  bool reused = s != nullptr;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!s) {
      s = std::make_unique<ProbeSession>();
      auto e = s->open(route, settings_.helo, std::min(settings_.connect_timeout, left()),
                       std::min(settings_.command_timeout, left()), &settings_.tls, settings_.tls_context.get());
      if (e != ProbeSession::Error::kNone) {
        log::warn("callout_backend_error").kv("backend", route).kv("error", error_name(e)).kv("detail", s->last_error());
        out->error = route + ": " + error_name(e) + ": " + s->last_error();
        out->timed_out = e == ProbeSession::Error::kTimeout;
        release_slot(route, nullptr);
        // Connection-level trouble: the next route (failover).
        return false;
      }
      reused = false;
    }
    if (!acquire_tokens(route, static_cast<int>(req.rcpts.size()), req.deadline)) {
      out->error = route + ": rate limit: no probe token before the deadline";
      out->timed_out = true;
      release_slot(route, std::move(s));
      return true;
    }
    smtp::ParsedReply r;
    auto e = s->command("MAIL FROM:" + bracket(req.sender), &r);
    if (e != ProbeSession::Error::kNone) {
      if (reused && attempt == 0) {
        s.reset();  // a pooled session the back-end closed: once more, fresh
        continue;
      }
      out->error = route + ": MAIL: " + error_name(e);
      out->timed_out = e == ProbeSession::Error::kTimeout;
      release_slot(route, nullptr);
      return false;
    }
    if (r.code / 100 != 2) {
      out->error = route + ": MAIL FROM refused: " + std::to_string(r.code);
      out->timed_out = false;
      if (r.code == 421) s->close();
      else {
        smtp::ParsedReply rr;
        (void)s->command("RSET", &rr);
      }
      release_slot(route, std::move(s));
      return true;  // the back-end answered; it does not want probes: undecided
    }
    out->replies.clear();
    for (const auto& rcpt : req.rcpts) {
      e = s->command("RCPT TO:" + bracket(rcpt), &r);
      if (e != ProbeSession::Error::kNone) break;
      out->replies.push_back(r);
      if (r.code == 421) {
        s->close();
        break;
      }
    }
    ++s->probes;
    if (s->is_open()) {
      smtp::ParsedReply rr;
      if (s->command("RSET", &rr) != ProbeSession::Error::kNone || rr.code / 100 != 2) s->close();
    }
    release_slot(route, std::move(s));
    if (out->replies.size() != req.rcpts.size()) {
      out->error = route + ": RCPT: " + error_name(e);
      out->timed_out = e == ProbeSession::Error::kTimeout;
      return true;
    }
    out->kind = ProbeResponse::Kind::kAnswered;
    out->backend = route;
    out->error.clear();
    out->timed_out = false;
    return true;
  }
  release_slot(route, nullptr);
  return false;
}

}  // namespace doorman::directory::callout
