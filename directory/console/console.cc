#include "directory/console/console.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <future>
#include <optional>

#include "common/log.h"
#include "common/metrics.h"
#include "directory/console/assets.h"
#include "directory/service/admin_json.h"
#include "directory/store/console_sessions.h"
#include "doorman/v1/admin.grpc.pb.h"

namespace doorman::directory::console {
namespace {

namespace v1 = doorman::v1;
using Stub = v1::AdminService::Stub;

constexpr size_t kHeaderLimit = 16 * 1024;
constexpr uint64_t kBodyLimit = 64ull * 1024 * 1024;
constexpr auto kRpcDeadline = std::chrono::seconds(60);
constexpr size_t kImportChunk = 5000;

const char* kCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

metrics::Counter& login_failures(const char* reason) {
  return metrics::global().counter("doorman_directory_console_login_failures_total",
                                   "Failed web console logins, by reason (wrong_token, no_certificate, rate_limited).",
                                   {{"reason", reason}});
}
metrics::Counter& logins() {
  return metrics::global().counter("doorman_directory_console_logins_total", "Successful web console logins.");
}
metrics::Counter& certificate_loads(const char* result) {
  return metrics::global().counter("doorman_directory_console_tls_certificate_loads_total",
                                   "Loads of the console's TLS certificate, key and client CA, at start-up and on every "
                                   "change on disk, by result (ok, failed: the previous files stay in use).",
                                   {{"result", result}});
}
metrics::Counter& changes() {
  return metrics::global().counter("doorman_directory_console_changes_total",
                                   "Changing AdminService calls made through the web console (audited).");
}

int64_t now_unix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Response json(int status, std::string body) {
  return Response{status, "application/json", std::move(body), {}};
}
Response error(int status, std::string_view message, std::string_view code = "") {
  std::string b = "{\"error\":" + json_string(message);
  if (!code.empty()) b += ",\"code\":" + json_string(code);
  return json(status, b + "}");
}

int http_status(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::INVALID_ARGUMENT: return 400;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::ALREADY_EXISTS: return 409;
    case grpc::StatusCode::FAILED_PRECONDITION: return 409;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}
const char* code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "INTERNAL";
  }
}

// "a=1&b=2" -> value of `name`, percent-decoded ("" when absent).
std::string query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = part.find('=');
    if (part.substr(0, eq) != name) continue;
    std::string_view raw = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    std::string out;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out.push_back(' ');
      } else if (raw[i] == '%' && i + 2 < raw.size()) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(raw.data() + i + 1, raw.data() + i + 3, v, 16);
        if (ec != std::errc() || p != raw.data() + i + 3) return "";
        out.push_back(static_cast<char>(v));
        i += 2;
      } else {
        out.push_back(raw[i]);
      }
    }
    return out;
  }
  return "";
}

// What an audit line names: the domain or the (first) address of a request.
std::string audit_target(const google::protobuf::Message& m) {
  if (const auto* r = dynamic_cast<const v1::CreateDomainRequest*>(&m)) return r->domain().name();
  if (const auto* r = dynamic_cast<const v1::UpdateDomainRequest*>(&m)) return r->domain().name();
  if (const auto* r = dynamic_cast<const v1::DeleteDomainRequest*>(&m)) return r->name();
  if (const auto* r = dynamic_cast<const v1::FlushCalloutRequest*>(&m)) return r->domain();
  if (const auto* r = dynamic_cast<const v1::CalloutAddressRequest*>(&m)) return r->address();
  if (const auto* r = dynamic_cast<const v1::AddressesRequest*>(&m)) {
    if (r->addresses_size() == 0) return "-";
    std::string t = r->addresses(0);
    if (r->addresses_size() > 1) t += " (+" + std::to_string(r->addresses_size() - 1) + " more)";
    return t;
  }
  return "-";
}

struct Rpc {
  bool change;
  std::function<grpc::Status(Stub&, grpc::ClientContext*, const std::string& body, std::string* out,
                             std::string* target)>
      call;
};

template <class Req, class Resp>
Rpc rpc(bool change, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*)) {
  return Rpc{change, [method](Stub& stub, grpc::ClientContext* ctx, const std::string& body, std::string* out,
                              std::string* target) {
               Req req;
               google::protobuf::util::JsonParseOptions po;
               po.ignore_unknown_fields = false;
               auto st = google::protobuf::util::JsonStringToMessage(body.empty() ? "{}" : body, &req, po);
               if (!st.ok())
                 return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "request is not valid JSON for " + std::string(Req::descriptor()->name()) + ": " +
                                         std::string(st.message()));
               *target = audit_target(req);
               Resp resp;
               grpc::Status s = (stub.*method)(ctx, req, &resp);
               if (s.ok()) *out = admin_json(resp);
               return s;
             }};
}

const std::map<std::string, Rpc>& rpcs() {
  static const std::map<std::string, Rpc> table = {
      {"ListDomains", rpc(false, &Stub::ListDomains)},
      {"GetStats", rpc(false, &Stub::GetStats)},
      {"GetDomain", rpc(false, &Stub::GetDomain)},
      {"CreateDomain", rpc(true, &Stub::CreateDomain)},
      {"UpdateDomain", rpc(true, &Stub::UpdateDomain)},
      {"DeleteDomain", rpc(true, &Stub::DeleteDomain)},
      {"AddAddresses", rpc(true, &Stub::AddAddresses)},
      {"RemoveAddresses", rpc(true, &Stub::RemoveAddresses)},
      {"ListAddresses", rpc(false, &Stub::ListAddresses)},
      {"CountAddresses", rpc(false, &Stub::CountAddresses)},
      {"Explain", rpc(false, &Stub::Explain)},
      {"GetCalloutEntry", rpc(false, &Stub::GetCalloutEntry)},
      {"ForgetCalloutEntry", rpc(true, &Stub::ForgetCalloutEntry)},
      {"FlushCalloutCache", rpc(true, &Stub::FlushCalloutCache)},
  };
  return table;
}

std::string header(const Request& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

}  // namespace

struct Console::Impl {
  explicit Impl(Options o)
      : options(std::move(o)),
        limiter(options.login_burst, options.login_refill, 10000),
        http(HttpServer::Limits{kHeaderLimit, kBodyLimit, std::chrono::seconds(60), options.threads}) {}

  Options options;
  LoginLimiter limiter;
  std::mutex channel_mu;
  std::string channel_token;
  std::shared_ptr<grpc::Channel> channel;

  HttpServer http;

  SessionKeys keys() { return SessionKeys::from_admin_token(options.auth->token()); }

  std::unique_ptr<Stub> stub() {
    // A new channel when the admin token was rotated (it carries the token).
    std::lock_guard<std::mutex> lock(channel_mu);
    std::string token = options.auth->token();
    if (!channel || token != channel_token) {
      channel = options.channel();
      channel_token = token;
    }
    return v1::AdminService::NewStub(channel);
  }

  // Runs `f` on a Redis connection and waits (bounded) for it.
  Status redis(std::function<Status(store::RedisConn&)> f) {
    if (!options.pool) return Status::Ok();
    auto done = std::make_shared<std::promise<Status>>();
    auto result = done->get_future();
    bool queued = options.pool->submit([f = std::move(f), done](store::RedisConn& conn) {
      done->set_value(conn.connected() ? f(conn) : Status::Unavailable("redis not connected"));
    });
    if (!queued) return Status::Unavailable("directory busy");
    if (result.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
      return Status::Unavailable("redis timeout");
    return result.get();
  }

  bool secure(const Request& r) const {
    return options.secure_cookie || r.tls || header(r, "x-forwarded-proto") == "https";
  }

  // Who is making a request, for the audit: the certificate a session was
  // opened with, else the subject of the verified client certificate on the
  // connection, else the holder of a token session.
  static std::string who(const Request& r, const Session* s = nullptr) {
    if (s && !s->who.empty()) return s->who;
    return r.client_cert_subject.empty() ? "token-session" : r.client_cert_subject;
  }

  // The session of a request, or an error response.
  std::optional<Session> session(const Request& r, Response* denied) {
    std::string value = cookie_from_header(header(r, "cookie"), kCookieName);
    auto s = value.empty() ? std::nullopt : keys().verify(value, now_unix());
    if (!s) {
      *denied = error(401, "not logged in or session expired", "UNAUTHENTICATED");
      return std::nullopt;
    }
    bool revoked = false;
    Status st = redis([&](store::RedisConn& c) { return store::console_session_revoked(c, s->sid, &revoked); });
    if (!st.ok()) {
      *denied = error(503, "session store unavailable: " + st.message, "UNAVAILABLE");
      return std::nullopt;
    }
    if (revoked) {
      *denied = error(401, "logged out", "UNAUTHENTICATED");
      return std::nullopt;
    }
    // A session opened with a certificate is only good with that certificate.
    if (!s->who.empty() && s->who != r.client_cert_subject) {
      *denied = error(401, "this session was opened with a client certificate that this connection does not present",
                      "UNAUTHENTICATED");
      return std::nullopt;
    }
    return s;
  }

  std::optional<Session> session_with_csrf(const Request& r, Response* denied) {
    auto s = session(r, denied);
    if (s && !keys().csrf_ok(*s, header(r, "x-csrf-token"))) {
      *denied = error(403, "missing or wrong CSRF token (X-CSRF-Token)", "PERMISSION_DENIED");
      return std::nullopt;
    }
    return s;
  }

  void audit(const Session& s, const Request& r, std::string_view method, std::string_view target,
             const grpc::Status& st) {
    changes().inc();
    log::info("console_audit")
        .kv("session", s.sid.substr(0, 8))
        .kv("who", who(r, &s))
        .kv("client", r.client)
        .kv("method", method)
        .kv("target", target)
        .kv("result", st.ok() ? "OK" : code_name(st.error_code()))
        .kv("message", st.error_message());
  }

  std::string session_json(const Session& s) {
    return "{\"csrf_token\":" + json_string(keys().csrf_token(s)) +
           ",\"expires_unix\":" + std::to_string(s.expires_unix) + "}";
  }

  Response login(const Request& r) {
    auto now = std::chrono::steady_clock::now();
    if (!limiter.allowed(r.client, now)) {
      login_failures("rate_limited").inc();
      log::warn("console_login_failed").kv("client", r.client).kv("reason", "rate_limited");
      Response resp = error(429, "too many failed logins; wait a minute", "RESOURCE_EXHAUSTED");
      resp.headers.emplace_back("Retry-After", std::to_string(options.login_refill.count()));
      return resp;
    }
    google::protobuf::Struct body;
    std::string token;
    bool by_certificate = false;
    if (google::protobuf::util::JsonStringToMessage(r.body, &body).ok()) {
      auto it = body.fields().find("token");
      if (it != body.fields().end()) token = it->second.string_value();
      auto c = body.fields().find("certificate");
      by_certificate = c != body.fields().end() && c->second.bool_value();
    }
    if (by_certificate) {
      // The handshake verified the certificate against the client CA
      // (common/http_server.h); without one there is nothing to log in with.
      if (r.client_cert_subject.empty()) {
        limiter.failed(r.client, now);
        login_failures("no_certificate").inc();
        log::warn("console_login_failed").kv("client", r.client).kv("reason", "no_certificate");
        return error(401, "no verified client certificate on this connection", "UNAUTHENTICATED");
      }
      return logged_in(r, "certificate", r.client_cert_subject);
    }
    while (!token.empty() && (token.back() == ' ' || token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (token.empty() || !auth::constant_time_equal(options.auth->token(), token)) {
      limiter.failed(r.client, now);
      login_failures("wrong_token").inc();
      log::warn("console_login_failed").kv("client", r.client).kv("reason", "wrong_token");
      return error(401, "wrong token", "UNAUTHENTICATED");
    }
    return logged_in(r, "token");
  }

  Response logged_in(const Request& r, std::string_view by, const std::string& certificate = "") {
    SessionKeys k = keys();
    Session s = k.create(now_unix(), options.session_ttl, certificate);
    logins().inc();
    log::info("console_login")
        .kv("session", s.sid.substr(0, 8))
        .kv("who", who(r))
        .kv("by", by)
        .kv("client", r.client);
    Response resp = json(200, session_json(s));
    resp.headers.emplace_back("Set-Cookie", set_cookie(k.cookie_value(s), options.session_ttl, secure(r)));
    return resp;
  }

  Response logout(const Request& r) {
    Response denied;
    auto s = session_with_csrf(r, &denied);
    if (!s) return denied;
    int64_t ttl_ms = (s->expires_unix - now_unix() + 1) * 1000;
    Status st = redis([&](store::RedisConn& c) { return store::revoke_console_session(c, s->sid, ttl_ms); });
    if (!st.ok()) return error(503, "could not record the logout: " + st.message, "UNAVAILABLE");
    log::info("console_logout").kv("session", s->sid.substr(0, 8)).kv("client", r.client);
    Response resp = json(200, "{}");
    resp.headers.emplace_back("Set-Cookie", clear_cookie(secure(r)));
    return resp;
  }

  Response call(const Request& r, const std::string& method) {
    auto it = rpcs().find(method);
    if (it == rpcs().end()) return error(404, "no such API method", "NOT_FOUND");
    Response denied;
    auto s = session_with_csrf(r, &denied);
    if (!s) return denied;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    std::string out, target;
    auto stub_ = stub();
    grpc::Status st = it->second.call(*stub_, &ctx, r.body, &out, &target);
    if (it->second.change) audit(*s, r, method, target, st);
    if (!st.ok()) return error(http_status(st.error_code()), st.error_message(), code_name(st.error_code()));
    return json(200, out);
  }

  Response import(const Request& r, std::string_view query) {
    Response denied;
    auto s = session_with_csrf(r, &denied);
    if (!s) return denied;
    std::string domain = query_param(query, "domain");
    bool replace = query_param(query, "replace") == "1";
    bool dry_run = query_param(query, "dry_run") == "1";
    if (replace && domain.empty()) return error(400, "replace needs ?domain=", "INVALID_ARGUMENT");
    if (dry_run && !replace) return error(400, "dry_run needs replace=1", "INVALID_ARGUMENT");
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
    v1::ImportResponse resp;
    auto stub_ = stub();
    auto writer = replace ? stub_->ReplaceAddresses(&ctx, &resp) : stub_->ImportAddresses(&ctx, &resp);
    v1::ImportChunk chunk;
    if (replace) chunk.set_domain(domain);
    chunk.set_dry_run(dry_run);
    std::string_view body = r.body;
    bool sent_any = false;
    auto flush = [&] {
      bool ok = writer->Write(chunk);
      chunk.Clear();
      sent_any = true;
      return ok;
    };
    bool ok = true;
    while (ok && !body.empty()) {
      size_t nl = body.find('\n');
      std::string_view line = body.substr(0, nl);
      body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      if (line.empty() || line.front() == '#') continue;
      chunk.add_addresses(std::string(line));
      if (static_cast<size_t>(chunk.addresses_size()) >= kImportChunk) ok = flush();
    }
    if (ok && (chunk.addresses_size() > 0 || !sent_any)) ok = flush();
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    std::string what = replace ? "ReplaceAddresses" : "ImportAddresses";
    // A dry run writes nothing: not a change, not audited.
    if (!dry_run) audit(*s, r, what, (replace ? domain : "-") + " (" + std::to_string(resp.received()) + " received)", st);
    if (!st.ok()) return error(http_status(st.error_code()), st.error_message(), code_name(st.error_code()));
    return json(200, admin_json(resp));
  }

  Response export_list(const Request& r, std::string_view query) {
    Response denied;
    auto s = session(r, &denied);
    if (!s) return denied;
    std::string domain = query_param(query, "domain");
    auto stub_ = stub();
    Response resp;
    resp.content_type = "text/plain; charset=utf-8";
    v1::ListAddressesRequest req;
    req.set_domain(domain);
    req.set_page_size(10000);
    for (;;) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
      v1::ListAddressesResponse page;
      grpc::Status st = stub_->ListAddresses(&ctx, req, &page);
      if (!st.ok()) return error(http_status(st.error_code()), st.error_message(), code_name(st.error_code()));
      for (const auto& a : page.addresses()) resp.body += a + "\n";
      if (page.next_page_token().empty()) break;
      req.set_page_token(page.next_page_token());
    }
    // The name is a validated domain (the call succeeded): safe in a header.
    std::string file;
    for (char c : domain)
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') file.push_back(c);
    resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + file + "-addresses.txt\"");
    return resp;
  }

  Response asset(const std::string& path) {
    const Asset* a = find_asset(path == "/" ? "/index.html" : path);
    if (!a) return error(404, "not found", "NOT_FOUND");
    Response resp;
    resp.content_type = std::string(a->content_type);
    resp.body = std::string(a->body);
    return resp;
  }

  Response route(const Request& r) {
    std::string path = r.target;
    std::string query;
    if (size_t q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path.resize(q);
    }
    const bool post = r.method == "POST";
    if (post) {
      // A second CSRF barrier: a cross-site form cannot send these types.
      std::string ct = header(r, "content-type");
      bool text = ct.rfind("text/plain", 0) == 0;
      bool jsn = ct.rfind("application/json", 0) == 0;
      if (path == "/api/import" ? !text : !jsn) return error(415, "unsupported content type", "INVALID_ARGUMENT");
    }
    if (path == "/api/login") return post ? login(r) : error(405, "use POST", "METHOD_NOT_ALLOWED");
    if (path == "/api/login-methods") {
      // What the login page offers: a certificate login when this
      // connection carries a verified client certificate.
      return json(200, "{\"token\":true,\"certificate\":" + json_string(r.client_cert_subject) + "}");
    }
    if (path == "/api/logout") return post ? logout(r) : error(405, "use POST", "METHOD_NOT_ALLOWED");
    if (path == "/api/session") {
      Response denied;
      auto s = session(r, &denied);
      return s ? json(200, session_json(*s)) : denied;
    }
    if (path.rfind("/api/rpc/", 0) == 0)
      return post ? call(r, path.substr(9)) : error(405, "use POST", "METHOD_NOT_ALLOWED");
    if (path == "/api/import") return post ? import(r, query) : error(405, "use POST", "METHOD_NOT_ALLOWED");
    if (path == "/api/export") return r.method == "GET" ? export_list(r, query) : error(405, "use GET");
    if (path.rfind("/api/", 0) == 0) return error(404, "not found", "NOT_FOUND");
    if (r.method != "GET" && r.method != "HEAD") return error(405, "method not allowed", "METHOD_NOT_ALLOWED");
    return asset(path);
  }

  // route() with the headers every response carries.
  Response handle(const Request& r) {
    Response out;
    try {
      out = route(r);
    } catch (const std::exception& e) {
      log::error("console_error").kv("error", e.what());
      out = error(500, "internal error", "INTERNAL");
    }
    out.headers.emplace_back("Content-Security-Policy", kCsp);
    out.headers.emplace_back("X-Content-Type-Options", "nosniff");
    out.headers.emplace_back("X-Frame-Options", "DENY");
    out.headers.emplace_back("Referrer-Policy", "no-referrer");
    out.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
    out.headers.emplace_back("Cache-Control", r.target.rfind("/api/", 0) == 0 ? "no-store" : "no-cache");
    return out;
  }
};

Console::Console(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Console::~Console() { stop(); }

Response Console::handle(const Request& req) { return impl_->handle(req); }

std::string Console::start(const std::string& listen) {
  if (!impl_->options.auth || impl_->options.auth->is_insecure())
    return "the console needs the admin token (--admin-token-file); it is not served with --admin-insecure";
  register_metrics();
  if (!impl_->options.tls.cert_file.empty()) {
    HttpServer::Tls tls = impl_->options.tls;
    tls.on_load = [](bool ok) { certificate_loads(ok ? "ok" : "failed").inc(); };
    std::string err = impl_->http.enable_tls(tls);
    if (!err.empty()) return "console TLS: " + err;
  }
  impl_->http.handle_all([this](const HttpRequest& r) { return impl_->handle(r); });
  return impl_->http.start(listen);
}

void Console::register_metrics() {
  login_failures("wrong_token");
  login_failures("no_certificate");
  certificate_loads("ok");
  certificate_loads("failed");
  login_failures("rate_limited");
  logins();
  changes();
}

void Console::stop() { impl_->http.stop(); }

int Console::port() const { return impl_->http.port(); }

}  // namespace doorman::directory::console
