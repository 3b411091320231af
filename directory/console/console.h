// The web admin console of the directory (issue #13): a JSON API and the
// page that uses it, on an HTTP listener of its own (--console-listen, off
// by default), served from files compiled into the binary (assets.h).
//
// The API is a gateway, not a second implementation: each call is turned
// into the AdminService request message with protobuf's JSON mapping and
// sent over an in-process gRPC channel to this directory's own admin server
// (the channel carries the admin token), so validation, normalisation and
// error messages are exactly doormanctl's. Its JSON is
// service/admin_json.h's, the same as `doormanctl --output json`.
//
//   POST /api/login          {"token": "..."} or {"certificate": true}
//                            -> session cookie + CSRF token
//   GET  /api/login-methods  {"token": true, "certificate": "<subject>"}:
//                            the subject of this connection's verified
//                            client certificate ("" when none)
//   GET  /api/session        the CSRF token of the current session (or 401)
//   POST /api/logout         ends the session on every replica (CSRF)
//   POST /api/rpc/<Method>   an AdminService unary call, request and
//                            response as JSON (CSRF; changes are audited)
//   POST /api/import?domain=D&replace=1[&dry_run=1]
//                            text body, one address per line (# comments and
//                            blank lines skipped): ImportAddresses, or
//                            ReplaceAddresses of D with replace=1 (CSRF);
//                            dry_run=1 only counts what the replace would
//                            change (the confirmation's figures)
//   GET  /api/export?domain=D the domain's list as a text file
//   GET  /, /app.js, ...     the page (assets.h)
//
// Auth: session.h (signed cookie, CSRF header X-CSRF-Token, login limit).
// Every change writes one audit line "console_audit" (session id prefix,
// client address, method, domain or address, result). Every response
// carries a strict Content-Security-Policy (no inline script or style),
// X-Content-Type-Options: nosniff, X-Frame-Options: DENY and
// Referrer-Policy: no-referrer; API responses Cache-Control: no-store.
// gRPC status -> HTTP: INVALID_ARGUMENT 400, NOT_FOUND 404, ALREADY_EXISTS
// 409, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, others 500.
//
// SECURITY: talks to browsers (untrusted bytes: headers up to 16 KiB,
// bodies up to 64 MiB; connections time out after 60 s; common/http_server.h).
// Plain HTTP unless Options::tls names a certificate (--console-tls-*):
// then HTTPS, and with a client CA a verified client certificate is a login
// of its own ("who" in the audit is its subject; token sessions are
// "token-session"). Certificates that do not chain to the CA fail the
// handshake. Without TLS here, put it behind TLS (an Ingress) or reach it
// through a port-forward to loopback. The cookie is Secure over TLS, with
// --console-secure-cookie, or for a request whose X-Forwarded-Proto is https. Requests are
// handled on Options::threads threads (4) apart from the gRPC and data path
// threads; each blocks on its AdminService call (deadline 60 s), so a long
// replace-all holds one of them.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/http_server.h"
#include "directory/auth/admin_auth.h"
#include "directory/console/session.h"
#include "directory/store/pool.h"

namespace doorman::directory::console {

using Request = HttpRequest;
using Response = HttpResponse;

class Console {
 public:
  struct Options {
    std::shared_ptr<auth::AdminAuth> auth;  // the admin token (must not be insecure)
    // An in-process channel to the AdminService carrying the admin token.
    std::function<std::shared_ptr<grpc::Channel>()> channel;
    store::RedisPool* pool = nullptr;  // logged-out sessions (store/console_sessions.h)
    std::chrono::seconds session_ttl{8 * 3600};
    bool secure_cookie = false;  // also Secure whenever a request came over TLS
    // HTTPS on the console's listener (cert_file "" = plain HTTP). With
    // client_ca_file, a verified client certificate logs in without the token.
    HttpServer::Tls tls;
    int login_burst = 5;                       // failed logins per client before the limit
    std::chrono::seconds login_refill{60};     // one more attempt per this
    int threads = 4;
  };

  explicit Console(Options options);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // Binds "host:port" and starts the threads. Returns "" or an error.
  std::string start(const std::string& listen);
  void stop();
  int port() const;

  // The console's series, at zero (the directory registers them at start-up
  // whether or not the console is on, so alert rules always find them).
  static void register_metrics();

  // One request (what the HTTP shell calls; no sockets).
  Response handle(const Request& req);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doorman::directory::console
