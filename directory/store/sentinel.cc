#include "directory/store/sentinel.h"

#include <charconv>

#include "common/log.h"
#include "directory/metrics.h"
#include "directory/store/redis.h"

namespace doorman::directory::store {
namespace {

bool parse_port(std::string_view text, int* port) {
  int p = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), p);
  if (ec != std::errc() || end != text.data() + text.size() || p < 1 || p > 65535) return false;
  *port = p;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

constexpr const char* kSwitchMaster = "+switch-master";

}  // namespace

std::string Endpoint::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string parse_endpoints(const std::string& text, std::vector<Endpoint>* out) {
  out->clear();
  std::string_view rest = text;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = trim(rest.substr(0, comma));
    if (item.empty()) return "empty entry in '" + text + "' (expected host:port,host:port,...)";
    Endpoint e;
    size_t colon;
    if (item.front() == '[') {
      size_t close = item.find(']');
      if (close == std::string_view::npos || close + 1 >= item.size() || item[close + 1] != ':')
        return "'" + std::string(item) + "': expected [IPv6]:port";
      e.host = std::string(item.substr(1, close - 1));
      colon = close + 1;
    } else {
      colon = item.rfind(':');
      if (colon == std::string_view::npos || colon == 0) return "'" + std::string(item) + "': expected host:port";
      e.host = std::string(item.substr(0, colon));
      if (e.host.find(':') != std::string::npos)
        return "'" + std::string(item) + "': an IPv6 address goes in brackets, [::1]:26379";
    }
    if (e.host.empty() || e.host.find_first_of(" /@") != std::string::npos)
      return "'" + std::string(item) + "': bad host";
    if (!parse_port(item.substr(colon + 1), &e.port)) return "'" + std::string(item) + "': bad port";
    out->push_back(std::move(e));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (out->size() > 64) return "at most 64 sentinels";
  return "";
}

bool parse_master_addr(const Reply& r, Endpoint* out) {
  if (r.type != Reply::Type::kArray || r.elements.size() != 2) return false;
  const Reply& host = r.elements[0];
  const Reply& port = r.elements[1];
  if (host.type != Reply::Type::kString || host.str.empty() || port.type != Reply::Type::kString) return false;
  Endpoint e{host.str, 0};
  if (!parse_port(port.str, &e.port)) return false;
  *out = std::move(e);
  return true;
}

bool parse_switch_master(const Reply& r, const std::string& master_name, Endpoint* to) {
  if (r.type != Reply::Type::kArray || r.elements.size() != 3) return false;
  if (r.elements[0].str != "message" || r.elements[1].str != kSwitchMaster) return false;
  // "<name> <old-ip> <old-port> <new-ip> <new-port>"
  std::vector<std::string_view> words;
  std::string_view rest = r.elements[2].str;
  while (!rest.empty()) {
    size_t sp = rest.find(' ');
    if (sp != 0) words.push_back(rest.substr(0, sp));
    if (sp == std::string_view::npos) break;
    rest = rest.substr(sp + 1);
  }
  if (words.size() != 5 || words[0] != master_name || words[3].empty()) return false;
  Endpoint e{std::string(words[3]), 0};
  if (!parse_port(words[4], &e.port)) return false;
  *to = std::move(e);
  return true;
}

bool parse_role(const Reply& r, RoleInfo* out) {
  *out = {};
  if (r.type != Reply::Type::kArray || r.elements.empty() || r.elements[0].type != Reply::Type::kString) return false;
  out->role = r.elements[0].str;
  // master: ["master", offset, [[ip, port, offset], ...]]
  if (out->role == "master" && r.elements.size() >= 3 && r.elements[2].type == Reply::Type::kArray)
    out->replicas = static_cast<int>(r.elements[2].elements.size());
  return true;
}

PrimaryLocator::PrimaryLocator(SentinelConfig config) : config_(std::move(config)) {}

PrimaryLocator::~PrimaryLocator() { stop(); }

std::optional<Endpoint> PrimaryLocator::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void PrimaryLocator::on_change(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_.push_back(std::move(fn));
}

void PrimaryLocator::adopt(const Endpoint& primary, bool failover_notice) {
  auto& m = directory_metrics();
  if (failover_notice) m.redis_failovers().inc();
  std::vector<std::function<void()>> listeners;
  std::optional<Endpoint> before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ && *current_ == primary) return;
    before = current_;
    current_ = primary;
    ++generation_;
    listeners = listeners_;
  }
  if (before) {
    m.redis_primary_changes().inc();
    m.mark_primary_change();
    log::warn("redis_primary_changed")
        .kv("from", before->str())
        .kv("to", primary.str())
        .kv("by", failover_notice ? "switch-master" : "sentinel answer");
  } else {
    log::info("redis_primary").kv("addr", primary.str()).kv("master_name", config_.master_name);
  }
  for (auto& fn : listeners) fn();
}

Status PrimaryLocator::refresh(Endpoint* out) {
  RedisConfig rc;
  rc.password = config_.sentinel_password;
  rc.timeout = config_.timeout;
  rc.sentinel = true;
  size_t first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = first_sentinel_;
  }
  std::string errors;
  const size_t n = config_.sentinels.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (first + k) % n;
    rc.host = config_.sentinels[i].host;
    rc.port = config_.sentinels[i].port;
    RedisConn conn(rc);
    Status s = conn.connect();
    Reply r;
    if (s.ok()) s = conn.command({"SENTINEL", "get-master-addr-by-name", config_.master_name}, &r);
    Endpoint primary;
    if (s.ok() && parse_master_addr(r, &primary)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        first_sentinel_ = i;
      }
      adopt(primary, false);
      if (out) *out = primary;
      return Status::Ok();
    }
    if (!errors.empty()) errors += "; ";
    errors += config_.sentinels[i].str() + ": " + (s.ok() ? "no primary named " + config_.master_name : s.message);
  }
  directory_metrics().redis_primary_found().set(0);
  return Status::Unavailable("no sentinel names a primary: " + errors);
}

void PrimaryLocator::check_primary() {
  std::optional<Endpoint> primary = current();
  bool found = false;
  if (primary) {
    if (!probe_ || probe_->target() != *primary || !probe_->connected()) {
      RedisConfig rc;
      rc.host = primary->host;
      rc.port = primary->port;
      rc.password = config_.redis_password;
      rc.timeout = config_.timeout;
      rc.sentinel = true;  // the watcher's own: not in the pool's metrics
      probe_ = std::make_unique<RedisConn>(rc);
      (void)probe_->connect();
    }
    Reply r;
    RoleInfo role;
    found = probe_->connected() && probe_->command({"ROLE"}, &r).ok() && parse_role(r, &role) && role.role == "master";
  }
  directory_metrics().redis_primary_found().set(found ? 1 : 0);
}

void PrimaryLocator::start() {
  std::lock_guard<std::mutex> lock(stop_mu_);
  if (watcher_.joinable()) return;
  stopping_ = false;
  watcher_ = std::thread([this] { watch_loop(); });
}

void PrimaryLocator::stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

void PrimaryLocator::watch_loop() {
  using Clock = std::chrono::steady_clock;
  RedisConfig rc;
  rc.password = config_.sentinel_password;
  rc.timeout = config_.timeout;
  rc.sentinel = true;
  std::unique_ptr<RedisConn> sub;
  size_t next = 0;  // the sentinel to subscribe on next
  bool logged_down = false;
  auto next_poll = Clock::now();
  constexpr auto kSlice = std::chrono::milliseconds(100);  // how soon stop() is noticed
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(stop_mu_);
      if (stopping_) break;
    }
    if (Clock::now() >= next_poll) {
      Status s = refresh();
      if (!s.ok() && !logged_down) log::warn("redis_no_primary").kv("error", s.message);
      logged_down = !s.ok();
      check_primary();
      next_poll = Clock::now() + config_.poll;
    }
    if (!sub || !sub->connected()) {
      const Endpoint& e = config_.sentinels[next % config_.sentinels.size()];
      ++next;
      rc.host = e.host;
      rc.port = e.port;
      sub = std::make_unique<RedisConn>(rc);
      Status s = sub->connect();
      if (s.ok()) s = sub->subscribe(kSwitchMaster);
      if (!s.ok()) {
        log::debug("sentinel_subscribe_failed").kv("sentinel", e.str()).kv("error", s.message);
        std::unique_lock<std::mutex> lock(stop_mu_);
        stop_cv_.wait_for(lock, kSlice, [this] { return stopping_; });
        continue;
      }
      log::debug("sentinel_subscribed").kv("sentinel", e.str()).kv("channel", kSwitchMaster);
    }
    Reply msg;
    bool got = false;
    Status s = sub->next_message(kSlice, &msg, &got);
    if (!s.ok()) continue;  // reconnects, on the next sentinel
    Endpoint to;
    if (got && parse_switch_master(msg, config_.master_name, &to)) {
      adopt(to, true);
      next_poll = Clock::now();  // check ROLE on the new primary at once
    }
  }
  sub.reset();
  probe_.reset();
}

}  // namespace doorman::directory::store
