// directory/console/console.h without sockets: Console::handle() for the
// paths that are decided before an AdminService call (static files, security
// headers, login, the login limit, sessions, CSRF, content types). The calls
// themselves are covered end to end by browser/ (real directory and Redis).
#include "directory/console/console.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace doorman::directory::console {
namespace {

std::string header(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

class ConsoleHandle : public ::testing::Test {
 protected:
  ConsoleHandle() : console_(options()) {}
  static Console::Options options() {
    Console::Options o;
    o.auth = auth::AdminAuth::with_token("right-token");
    o.channel = [] { return std::shared_ptr<grpc::Channel>(); };  // never reached here
    o.login_burst = 3;
    return o;
  }
  Response request(std::string method, std::string target, std::string body = "",
                   std::map<std::string, std::string> headers = {}, std::string client = "192.0.2.7") {
    Request r{std::move(method), std::move(target), std::move(headers), std::move(body), std::move(client), false, ""};
    return console_.handle(r);
  }
  Response login(const std::string& token, std::map<std::string, std::string> extra = {}) {
    extra["content-type"] = "application/json";
    return request("POST", "/api/login", "{\"token\":\"" + token + "\"}", extra);
  }
  // "doorman_console=..." from a Set-Cookie value.
  static std::string cookie_of(const Response& r) {
    std::string c = header(r, "Set-Cookie");
    return c.substr(0, c.find(';'));
  }
  Console console_;
};

TEST_F(ConsoleHandle, ServesThePageWithStrictHeaders) {
  Response r = request("GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  EXPECT_NE(r.body.find("<script type=\"module\" src=\"/app.js\">"), std::string::npos);
  EXPECT_NE(header(r, "Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(header(r, "Content-Security-Policy").find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(header(r, "X-Frame-Options"), "DENY");
  EXPECT_EQ(request("GET", "/app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(request("GET", "/nothing-here").status, 404);
  EXPECT_EQ(request("DELETE", "/").status, 405);
  EXPECT_EQ(header(request("GET", "/api/session"), "Cache-Control"), "no-store");
}

TEST_F(ConsoleHandle, LoginSetsAStrictCookieAndGivesTheCsrfToken) {
  Response r = login("right-token");
  ASSERT_EQ(r.status, 200) << r.body;
  std::string set = header(r, "Set-Cookie");
  EXPECT_NE(set.find("HttpOnly"), std::string::npos);
  EXPECT_NE(set.find("SameSite=Strict"), std::string::npos);
  EXPECT_EQ(set.find("Secure"), std::string::npos);
  EXPECT_NE(r.body.find("\"csrf_token\":\""), std::string::npos);
  // Behind a TLS-terminating proxy the cookie is Secure.
  EXPECT_NE(header(login("right-token", {{"x-forwarded-proto", "https"}}), "Set-Cookie").find("; Secure"),
            std::string::npos);

  Response s = request("GET", "/api/session", "", {{"cookie", "a=b; " + cookie_of(r)}});
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.body, r.body);  // the same CSRF token and expiry
  EXPECT_EQ(request("GET", "/api/session").status, 401);
  EXPECT_EQ(request("GET", "/api/session", "", {{"cookie", "doorman_console=v1.forged"}}).status, 401);
}

// What the HTTPS shell passes on: a request over TLS gets a Secure cookie;
// a verified client certificate's subject is a login of its own, and
// without one a certificate login is refused (and counts as a failure).
TEST_F(ConsoleHandle, CertificateLoginNeedsAVerifiedCertificate) {
  auto over_tls = [&](std::string target, std::string body, std::string subject) {
    Request r{body.empty() ? "GET" : "POST", std::move(target), {{"content-type", "application/json"}},
              std::move(body), "192.0.2.9", true, std::move(subject)};
    return console_.handle(r);
  };
  Response m = over_tls("/api/login-methods", "", "CN=alice,O=Example");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.body, "{\"token\":true,\"certificate\":\"CN=alice,O=Example\"}");
  EXPECT_EQ(over_tls("/api/login-methods", "", "").body, "{\"token\":true,\"certificate\":\"\"}");

  Response ok = over_tls("/api/login", "{\"certificate\":true}", "CN=alice,O=Example");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(header(ok, "Set-Cookie").find("; Secure"), std::string::npos);
  // The session is good with the certificate it was opened with, not without it or with another one.
  Request with{"GET", "/api/session", {{"cookie", cookie_of(ok)}}, "", "192.0.2.9", true, "CN=alice,O=Example"};
  EXPECT_EQ(console_.handle(with).status, 200);
  EXPECT_EQ(request("GET", "/api/session", "", {{"cookie", cookie_of(ok)}}).status, 401);
  Request other{"GET", "/api/session", {{"cookie", cookie_of(ok)}}, "", "192.0.2.9", true, "CN=bob,O=Example"};
  EXPECT_EQ(console_.handle(other).status, 401);

  Response none = over_tls("/api/login", "{\"certificate\":true}", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(header(none, "Set-Cookie").empty());
  // "certificate": false is not a certificate login, and no token is no login.
  EXPECT_EQ(over_tls("/api/login", "{\"certificate\":false}", "CN=alice,O=Example").status, 401);
  // Token login over TLS: Secure too.
  Request t{"POST", "/api/login", {{"content-type", "application/json"}}, "{\"token\":\"right-token\"}",
            "192.0.2.9", true, ""};
  EXPECT_NE(header(console_.handle(t), "Set-Cookie").find("; Secure"), std::string::npos);
}

TEST_F(ConsoleHandle, WrongTokensAreRefusedThenRateLimited) {
  EXPECT_EQ(login("wrong").status, 401);
  EXPECT_EQ(login("").status, 401);
  EXPECT_EQ(login("right-token-").status, 401);
  // Over the limit (3): refused without looking at the token, even the right one.
  Response limited = login("right-token");
  EXPECT_EQ(limited.status, 429);
  EXPECT_FALSE(header(limited, "Retry-After").empty());
  // Another client is not affected.
  Request other{"POST", "/api/login", {{"content-type", "application/json"}}, "{\"token\":\"right-token\"}", "192.0.2.8", false, ""};
  EXPECT_EQ(console_.handle(other).status, 200);
}

TEST_F(ConsoleHandle, ChangesNeedTheCsrfHeaderAndJson) {
  Response r = login("right-token");
  std::string cookie = cookie_of(r);
  std::string csrf = r.body.substr(r.body.find("\"csrf_token\":\"") + 14, 64);
  const std::string body = "{\"addresses\":[\"a@example.com\"]}";
  EXPECT_EQ(request("POST", "/api/rpc/AddAddresses", body, {{"cookie", cookie}, {"content-type", "application/json"}}).status,
            403);
  EXPECT_EQ(request("POST", "/api/rpc/AddAddresses", body,
                    {{"cookie", cookie}, {"content-type", "application/json"}, {"x-csrf-token", std::string(64, '0')}})
                .status,
            403);
  // A cross-site form can only send these types.
  EXPECT_EQ(request("POST", "/api/rpc/AddAddresses", body,
                    {{"cookie", cookie}, {"content-type", "application/x-www-form-urlencoded"}, {"x-csrf-token", csrf}})
                .status,
            415);
  EXPECT_EQ(request("POST", "/api/rpc/NoSuchMethod", "{}",
                    {{"cookie", cookie}, {"content-type", "application/json"}, {"x-csrf-token", csrf}})
                .status,
            404);
  EXPECT_EQ(request("POST", "/api/rpc/AddAddresses", body, {{"content-type", "application/json"}, {"x-csrf-token", csrf}})
                .status,
            401);
  EXPECT_EQ(request("GET", "/api/rpc/ListDomains").status, 405);
}

TEST_F(ConsoleHandle, LogoutClearsTheCookie) {
  Response r = login("right-token");
  std::string csrf = r.body.substr(r.body.find("\"csrf_token\":\"") + 14, 64);
  std::map<std::string, std::string> h = {{"cookie", cookie_of(r)}, {"content-type", "application/json"}};
  EXPECT_EQ(request("POST", "/api/logout", "{}", h).status, 403);  // CSRF here too
  h["x-csrf-token"] = csrf;
  Response out = request("POST", "/api/logout", "{}", h);
  EXPECT_EQ(out.status, 200);
  EXPECT_NE(header(out, "Set-Cookie").find("doorman_console=; Path=/; Max-Age=0"), std::string::npos);
}

}  // namespace
}  // namespace doorman::directory::console
