// Sessions of the web console (issue #13): signed cookies, CSRF tokens and
// the login failure limit. Sans-I/O: no sockets, no Redis, no clock of its
// own (every call takes `now`), so tests/directory/console/ drive it fully.
//
// A session is a signed value, not a server-side record: any directory
// replica behind one Service accepts it, because every replica derives the
// same key from the admin token (SessionKeys::from_admin_token: SHA-256 of a
// fixed label and the token). Rotating the admin token therefore ends every
// session. Cookie value: "v1.<sid>.<expires_unix>.<hmac>" where sid is 128
// random bits (hex) and hmac = HMAC-SHA256(key, "v1.<sid>.<expires>") in hex;
// a session opened with a client certificate is
// "v2.<sid>.<expires_unix>.<hex(subject)>.<hmac>", signed the same way, so it
// is bound to that certificate: the console refuses it on a connection that
// does not present the same verified subject.
// Logout must also work across replicas: the console records the sid as
// revoked in Redis until it would have expired (store/console_sessions.h);
// this unit only parses and checks.
//
// CSRF: the token of a session is HMAC-SHA256(key, "csrf.<sid>"), handed to
// the page at login and by GET /api/session, and required in the
// X-CSRF-Token header of every API call that is not a plain read; a forged
// cross-site request has the cookie (SameSite=Strict keeps even that away
// in current browsers) but cannot know the token.
//
// Login failures: LoginLimiter allows `burst` failures per client address,
// refilled at one per `refill`; beyond that login attempts are refused
// (429) without looking at the token. At most `max_clients` addresses are
// remembered (the oldest entry goes first), so a flood of addresses cannot
// grow memory without bound.
//
// SECURITY: parses the untrusted Cookie header value and CSRF header; both
// are bounded (at most 4 KiB are looked at) and compared in constant time.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace doorman::directory::console {

inline constexpr std::string_view kCookieName = "doorman_console";

struct Session {
  std::string sid;          // 32 hex digits
  int64_t expires_unix = 0;  // seconds
  std::string who;           // the client certificate's subject it was opened with ("" = admin token)
};

class SessionKeys {
 public:
  // The signing key every replica derives from the same admin token.
  static SessionKeys from_admin_token(std::string_view token);
  // A new session: random sid, expiry now + ttl, opened by `who` ("" = token).
  Session create(int64_t now_unix, std::chrono::seconds ttl, std::string who = "") const;
  // The cookie value of a session.
  std::string cookie_value(const Session& s) const;
  // The session of a cookie value, if its signature is right and it has not
  // expired at `now_unix`.
  std::optional<Session> verify(std::string_view cookie_value, int64_t now_unix) const;
  std::string csrf_token(const Session& s) const;
  bool csrf_ok(const Session& s, std::string_view presented) const;

 private:
  std::string key_;  // 32 raw bytes
};

// The value of cookie `name` in a Cookie request header ("" when absent).
std::string cookie_from_header(std::string_view header, std::string_view name);

// The Set-Cookie header value for a session (HttpOnly; SameSite=Strict;
// Path=/; Max-Age; Secure when `secure`), and the one that clears it.
std::string set_cookie(std::string_view value, std::chrono::seconds max_age, bool secure);
std::string clear_cookie(bool secure);

class LoginLimiter {
 public:
  LoginLimiter(int burst, std::chrono::seconds refill, size_t max_clients)
      : burst_(burst), refill_(refill), max_clients_(max_clients) {}
  // Whether `client` may try to log in now.
  bool allowed(const std::string& client, std::chrono::steady_clock::time_point now);
  // Records a failed attempt.
  void failed(const std::string& client, std::chrono::steady_clock::time_point now);
  size_t size();

 private:
  struct Entry {
    double tokens;
    std::chrono::steady_clock::time_point at;
    std::list<std::string>::iterator order;
  };
  void refill(Entry& e, std::chrono::steady_clock::time_point now) const;

  const int burst_;
  const std::chrono::seconds refill_;
  const size_t max_clients_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
  std::list<std::string> order_;  // oldest first
};

}  // namespace doorman::directory::console
