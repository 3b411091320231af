#include "directory/console/session.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <charconv>

#include "directory/auth/admin_auth.h"

namespace doorman::directory::console {
namespace {

constexpr size_t kMaxCookieBytes = 4096;

std::string hex(const unsigned char* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(d[p[i] >> 4]);
    s.push_back(d[p[i] & 15]);
  }
  return s;
}

std::string hmac_hex(const std::string& key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return hex(out, len);
}

bool all_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

SessionKeys SessionKeys::from_admin_token(std::string_view token) {
  static constexpr std::string_view kLabel = "doorman console session key v1";
  std::string input(kLabel);
  input.push_back('\0');
  input.append(token);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  SessionKeys k;
  k.key_.assign(reinterpret_cast<const char*>(digest), sizeof digest);
  return k;
}

Session SessionKeys::create(int64_t now_unix, std::chrono::seconds ttl, std::string who) const {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  return Session{hex(raw, sizeof raw), now_unix + ttl.count(), std::move(who)};
}

std::string SessionKeys::cookie_value(const Session& s) const {
  std::string payload = (s.who.empty() ? "v1." : "v2.") + s.sid + "." + std::to_string(s.expires_unix);
  if (!s.who.empty())
    payload += "." + hex(reinterpret_cast<const unsigned char*>(s.who.data()), s.who.size());
  return payload + "." + hmac_hex(key_, payload);
}

std::optional<Session> SessionKeys::verify(std::string_view value, int64_t now_unix) const {
  if (value.size() > kMaxCookieBytes) return std::nullopt;
  size_t last = value.rfind('.');
  if (last == std::string_view::npos) return std::nullopt;
  std::string_view payload = value.substr(0, last);
  std::string_view mac = value.substr(last + 1);
  if (!auth::constant_time_equal(hmac_hex(key_, payload), mac)) return std::nullopt;
  // Signed by us: the format is ours, but check it anyway.
  const bool v2 = payload.substr(0, 3) == "v2.";
  if (payload.substr(0, 3) != "v1." && !v2) return std::nullopt;
  payload.remove_prefix(3);
  size_t dot = payload.find('.');
  if (dot != 32 || !all_hex(payload.substr(0, 32))) return std::nullopt;
  Session s{std::string(payload.substr(0, 32)), 0, ""};
  std::string_view exp = payload.substr(33);
  if (v2) {
    size_t who_dot = exp.find('.');
    if (who_dot == std::string_view::npos) return std::nullopt;
    std::string_view who_hex = exp.substr(who_dot + 1);
    if (who_hex.empty() || who_hex.size() % 2 != 0 || !all_hex(who_hex)) return std::nullopt;
    for (size_t i = 0; i < who_hex.size(); i += 2) {
      auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
      s.who.push_back(static_cast<char>(nibble(who_hex[i]) << 4 | nibble(who_hex[i + 1])));
    }
    exp = exp.substr(0, who_dot);
  }
  auto [p, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), s.expires_unix);
  if (ec != std::errc() || p != exp.data() + exp.size()) return std::nullopt;
  if (s.expires_unix <= now_unix) return std::nullopt;
  return s;
}

std::string SessionKeys::csrf_token(const Session& s) const { return hmac_hex(key_, "csrf." + s.sid); }

bool SessionKeys::csrf_ok(const Session& s, std::string_view presented) const {
  if (presented.empty() || presented.size() > kMaxCookieBytes) return false;
  return auth::constant_time_equal(csrf_token(s), presented);
}

std::string cookie_from_header(std::string_view header, std::string_view name) {
  if (header.size() > kMaxCookieBytes) header = header.substr(0, kMaxCookieBytes);
  while (!header.empty()) {
    size_t semi = header.find(';');
    std::string_view part = header.substr(0, semi);
    header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) continue;
    if (part.substr(0, eq) == name) return std::string(part.substr(eq + 1));
  }
  return "";
}

std::string set_cookie(std::string_view value, std::chrono::seconds max_age, bool secure) {
  std::string c = std::string(kCookieName) + "=" + std::string(value) +
                  "; Path=/; Max-Age=" + std::to_string(max_age.count()) + "; HttpOnly; SameSite=Strict";
  if (secure) c += "; Secure";
  return c;
}

std::string clear_cookie(bool secure) { return set_cookie("", std::chrono::seconds(0), secure); }

void LoginLimiter::refill(Entry& e, std::chrono::steady_clock::time_point now) const {
  double add = std::chrono::duration<double>(now - e.at).count() / std::chrono::duration<double>(refill_).count();
  if (add > 0) {
    e.tokens = std::min<double>(burst_, e.tokens + add);
    e.at = now;
  }
}

bool LoginLimiter::allowed(const std::string& client, std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(client);
  if (it == entries_.end()) return true;
  refill(it->second, now);
  return it->second.tokens >= 1.0;
}

void LoginLimiter::failed(const std::string& client, std::chrono::steady_clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(client);
  if (it == entries_.end()) {
    if (entries_.size() >= max_clients_ && !order_.empty()) {
      entries_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(client);
    it = entries_.emplace(client, Entry{static_cast<double>(burst_), now, std::prev(order_.end())}).first;
  } else {
    // Most recently failed last: the oldest goes first when full.
    order_.splice(order_.end(), order_, it->second.order);
  }
  refill(it->second, now);
  it->second.tokens = std::max(0.0, it->second.tokens - 1.0);
}

size_t LoginLimiter::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace doorman::directory::console
