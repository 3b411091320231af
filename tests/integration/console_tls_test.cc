// Issue #13: the web console over HTTPS, and logging in with a client
// certificate (--console-tls-cert-file/-key-file/-client-ca-file). Real
// redis-server and doorman-directory on loopback, a throwaway PKI made by
// the openssl CLI (tests/support/test_certs.h), and an HTTPS client
// (Boost.Beast over OpenSSL) that presents a client certificate or none.
// A browser test with a client certificate would need a Chromium profile
// with an NSS database; this client makes the same requests the page does.
#include <gtest/gtest.h>

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <fstream>
#include <map>
#include <thread>

#include "tests/integration/stack.h"
#include "tests/support/http_get.h"
#include "tests/support/test_certs.h"

namespace doorman::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using boost::system::error_code;

struct HttpsResult {
  int status = 0;         // 0: no HTTP answer (connection or handshake failed)
  std::string error;      // why, when status is 0
  std::string body;
  std::string set_cookie;
  std::string server_subject;  // of the certificate the console presented
};

struct Client {
  std::string ca;               // to verify the console
  std::string cert, key;        // "" = no client certificate
};

// One request on a new TLS connection to 127.0.0.1:port, within 5 s.
HttpsResult https(int port, const Client& client, const std::string& method, const std::string& target,
                  const std::string& body = "", std::map<std::string, std::string> headers = {}) {
  HttpsResult out;
  asio::io_context io;
  ssl::context ctx(ssl::context::tls_client);
  error_code ec;
  ctx.load_verify_file(client.ca, ec);
  if (ec) return {0, "CA: " + ec.message(), "", "", ""};
  ctx.set_verify_mode(ssl::verify_peer);
  if (!client.cert.empty()) {
    ctx.use_certificate_chain_file(client.cert, ec);
    if (!ec) ctx.use_private_key_file(client.key, ssl::context::pem, ec);
    if (ec) return {0, "client certificate: " + ec.message(), "", "", ""};
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, ctx);
  SSL_set_tlsext_host_name(stream.native_handle(), "localhost");
  http::request<http::string_body> req{method == "POST" ? http::verb::post : http::verb::get, target, 11};
  req.set(http::field::host, "localhost");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (method == "POST") {
    if (headers.count("Content-Type") == 0) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  auto fail = [&](const char* what, error_code e) {
    if (out.error.empty()) out.error = std::string(what) + ": " + e.message();
  };
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
  beast::get_lowest_layer(stream).async_connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)), [&](error_code connected) {
        if (connected) return fail("connect", connected);
        stream.async_handshake(ssl::stream_base::client, [&](error_code shaken) {
          if (shaken) return fail("handshake", shaken);
          if (X509* peer = SSL_get1_peer_certificate(stream.native_handle())) {
            char name[256] = {0};
            X509_NAME_oneline(X509_get_subject_name(peer), name, sizeof name - 1);
            out.server_subject = name;
            X509_free(peer);
          }
          http::async_write(stream, req, [&](error_code written, size_t) {
            if (written) return fail("write", written);
            http::async_read(stream, buffer, res, [&](error_code read, size_t) {
              if (read) return fail("read", read);
              out.status = static_cast<int>(res.result_int());
              out.body = res.body();
              out.set_cookie = std::string(res[http::field::set_cookie]);
            });
          });
        });
      });
  io.run();
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The value of "key":"value" in a flat JSON object ("" when absent).
std::string json_field(const std::string& body, const std::string& key) {
  std::string k = "\"" + key + "\":\"";
  size_t at = body.find(k);
  if (at == std::string::npos) return "";
  at += k.size();
  return body.substr(at, body.find('"', at) - at);
}

class ConsoleTls : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = make_test_pki(pki_dir_);
    ASSERT_TRUE(pki_.ok()) << pki_.error;
    console_port_ = free_tcp_port();
    stack_.set_directory_args({"--console-listen", "127.0.0.1:" + std::to_string(console_port_),
                               "--console-tls-cert-file", pki_.server_cert, "--console-tls-key-file",
                               pki_.server_key, "--console-tls-client-ca-file", pki_.ca_cert,
                               "--tls-reload-seconds", "1"});
    ASSERT_EQ(stack_.start("domains:\n"
                           "  - name: example.com\n"
                           "    mode: list\n"
                           "    routes: [\"127.0.0.1:2526\"]\n"
                           "    addresses: [alice]\n"),
              "");
    ASSERT_TRUE(wait_for_port(console_port_, std::chrono::seconds(10))) << stack_.logs();
  }
  void TearDown() override { remove_tree(pki_dir_); }

  Client with_cert() const { return {pki_.ca_cert, pki_.client_cert, pki_.client_key}; }
  Client rogue() const { return {pki_.ca_cert, pki_.rogue_client_cert, pki_.rogue_client_key}; }
  Client no_cert() const { return {pki_.ca_cert, "", ""}; }

  // Adds `address` through the console with the session of `login`; returns
  // the HTTP status (CSRF token sent only when `csrf` is true).
  int add(const Client& c, const HttpsResult& login, const std::string& address, bool csrf) {
    std::map<std::string, std::string> h = {{"Cookie", login.set_cookie.substr(0, login.set_cookie.find(';'))}};
    if (csrf) h["X-CSRF-Token"] = json_field(login.body, "csrf_token");
    return https(console_port_, c, "POST", "/api/rpc/AddAddresses", "{\"addresses\":[\"" + address + "\"]}", h)
        .status;
  }
  std::string listed() { return stack_.ctl({"address", "list", "example.com"}).out; }

  std::string pki_dir_ = make_temp_dir("doorman-console-pki");
  TestPki pki_;
  Stack stack_;
  int console_port_ = 0;
};

TEST_F(ConsoleTls, ClientCertificateLogsInAndChangesWithCsrf) {
  HttpsResult methods = https(console_port_, with_cert(), "GET", "/api/login-methods");
  ASSERT_EQ(methods.status, 200) << methods.error;
  EXPECT_EQ(json_field(methods.body, "certificate"), "CN=doorman-edge") << methods.body;

  HttpsResult login = https(console_port_, with_cert(), "POST", "/api/login", "{\"certificate\":true}");
  ASSERT_EQ(login.status, 200) << login.error << login.body;
  EXPECT_TRUE(contains(login.set_cookie, "; Secure")) << login.set_cookie;  // served over TLS
  EXPECT_TRUE(contains(login.set_cookie, "HttpOnly")) << login.set_cookie;
  EXPECT_FALSE(json_field(login.body, "csrf_token").empty()) << login.body;

  // CSRF is still required for a change.
  EXPECT_EQ(add(with_cert(), login, "carol@example.com", false), 403);
  EXPECT_FALSE(contains(listed(), "carol@example.com"));
  EXPECT_EQ(add(with_cert(), login, "carol@example.com", true), 200);
  EXPECT_TRUE(contains(listed(), "carol@example.com"));
  // The session is bound to the certificate: its cookie (and CSRF token) on a
  // connection without that certificate is refused, and changes nothing.
  EXPECT_EQ(add(no_cert(), login, "mallory@example.com", true), 401);
  EXPECT_FALSE(contains(listed(), "mallory@example.com"));

  // The login and the audit name the certificate's subject.
  std::string logs = stack_.logs();
  EXPECT_TRUE(contains(logs, "event=console_login")) << logs;
  EXPECT_TRUE(contains(logs, "by=certificate")) << logs;
  EXPECT_TRUE(contains(logs, "event=console_audit")) << logs;
  EXPECT_TRUE(contains(logs, "who=\"CN=doorman-edge\"")) << logs;
}

TEST_F(ConsoleTls, CertificateFromAnotherCaIsRefused) {
  HttpsResult r = https(console_port_, rogue(), "POST", "/api/login", "{\"certificate\":true}");
  EXPECT_EQ(r.status, 0) << r.body;  // the handshake fails: no HTTP answer at all
  EXPECT_FALSE(r.error.empty());
  // The console still answers everyone else.
  EXPECT_EQ(https(console_port_, no_cert(), "GET", "/api/login-methods").status, 200);
}

TEST_F(ConsoleTls, WithoutCertificateTheTokenLoginWorks) {
  HttpsResult methods = https(console_port_, no_cert(), "GET", "/api/login-methods");
  ASSERT_EQ(methods.status, 200) << methods.error;
  EXPECT_TRUE(contains(methods.body, "\"certificate\":\"\"")) << methods.body;
  // No certificate, no certificate login.
  HttpsResult refused = https(console_port_, no_cert(), "POST", "/api/login", "{\"certificate\":true}");
  EXPECT_EQ(refused.status, 401) << refused.error;
  EXPECT_TRUE(refused.set_cookie.empty());

  std::string token;
  std::getline(std::ifstream(stack_.dir() + "/admin-token"), token);
  HttpsResult login = https(console_port_, no_cert(), "POST", "/api/login", "{\"token\":\"" + token + "\"}");
  ASSERT_EQ(login.status, 200) << login.error << login.body;
  EXPECT_TRUE(contains(login.set_cookie, "; Secure")) << login.set_cookie;
  EXPECT_EQ(add(no_cert(), login, "dave@example.com", false), 403);
  EXPECT_EQ(add(no_cert(), login, "dave@example.com", true), 200);
  EXPECT_TRUE(contains(listed(), "dave@example.com"));
  EXPECT_TRUE(contains(stack_.logs(), "who=token-session")) << stack_.logs();
  // Plain HTTP on the HTTPS port gets no page.
  EXPECT_EQ(http_get(console_port_, "/", 2000).status, 0);
}

// A renewed certificate is served without a restart (the files are checked
// every --tls-reload-seconds); files that do not load leave the last good one.
TEST_F(ConsoleTls, RenewedCertificateIsServedWithoutRestart) {
  HttpsResult first = https(console_port_, no_cert(), "GET", "/api/login-methods");
  ASSERT_EQ(first.status, 200) << first.error;
  EXPECT_EQ(first.server_subject, "/CN=localhost");
  ASSERT_EQ(make_server_cert(pki_, pki_.server_cert, pki_.server_key, "console-renewed"), "");
  std::string served;
  for (int i = 0; i < 100 && served != "/CN=console-renewed"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    served = https(console_port_, no_cert(), "GET", "/api/login-methods").server_subject;
  }
  EXPECT_EQ(served, "/CN=console-renewed") << stack_.logs();

  std::ofstream(pki_.server_cert) << "-----BEGIN CERTIFICATE-----\nhalf-written\n";
  // The files are looked at when a connection comes in.
  for (int i = 0; i < 100 && !contains(stack_.logs(), "event=http_tls_reload_failed"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    https(console_port_, no_cert(), "GET", "/api/login-methods");
  }
  EXPECT_TRUE(contains(stack_.logs(), "event=http_tls_reload_failed")) << stack_.logs();
  HttpsResult after = https(console_port_, no_cert(), "GET", "/api/login-methods");
  EXPECT_EQ(after.status, 200) << after.error;
  EXPECT_EQ(after.server_subject, "/CN=console-renewed");
}

}  // namespace
}  // namespace doorman::test
