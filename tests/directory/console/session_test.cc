// directory/console/session.h: signed session cookies, CSRF tokens, cookie
// parsing and attributes, the login failure limit. No sockets, no Redis.
#include "directory/console/session.h"

#include <gtest/gtest.h>

#include <vector>

namespace doorman::directory::console {
namespace {

constexpr int64_t kNow = 1'800'000'000;

TEST(SessionKeys, ACookieVerifiesOnEveryReplicaWithTheSameToken) {
  auto a = SessionKeys::from_admin_token("secret-token");
  auto b = SessionKeys::from_admin_token("secret-token");  // another replica
  Session s = a.create(kNow, std::chrono::hours(8));
  EXPECT_EQ(s.sid.size(), 32u);
  EXPECT_EQ(s.expires_unix, kNow + 8 * 3600);
  auto v = b.verify(a.cookie_value(s), kNow + 1);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->sid, s.sid);
  EXPECT_EQ(v->expires_unix, s.expires_unix);
  EXPECT_TRUE(b.csrf_ok(*v, a.csrf_token(s)));
}

TEST(SessionKeys, SessionIdsAreRandom) {
  auto k = SessionKeys::from_admin_token("t");
  EXPECT_NE(k.create(kNow, std::chrono::hours(1)).sid, k.create(kNow, std::chrono::hours(1)).sid);
}

TEST(SessionKeys, ARotatedTokenEndsEverySession) {
  auto old_key = SessionKeys::from_admin_token("old");
  Session s = old_key.create(kNow, std::chrono::hours(8));
  EXPECT_FALSE(SessionKeys::from_admin_token("new").verify(old_key.cookie_value(s), kNow).has_value());
}

TEST(SessionKeys, ExpiredSessionsAreRefused) {
  auto k = SessionKeys::from_admin_token("t");
  Session s = k.create(kNow, std::chrono::seconds(60));
  EXPECT_TRUE(k.verify(k.cookie_value(s), kNow + 59).has_value());
  EXPECT_FALSE(k.verify(k.cookie_value(s), kNow + 60).has_value());
}

TEST(SessionKeys, TamperedCookiesAreRefused) {
  auto k = SessionKeys::from_admin_token("t");
  Session s = k.create(kNow, std::chrono::seconds(60));
  std::string good = k.cookie_value(s);
  // A longer expiry with the old signature.
  Session longer = s;
  longer.expires_unix += 1'000'000;
  std::string forged = k.cookie_value(longer);
  forged = forged.substr(0, forged.rfind('.')) + good.substr(good.rfind('.'));
  EXPECT_FALSE(k.verify(forged, kNow).has_value());
  std::string flipped = good;
  flipped[5] = flipped[5] == 'a' ? 'b' : 'a';
  EXPECT_FALSE(k.verify(flipped, kNow).has_value());
  for (const std::string& bad : std::vector<std::string>{"", ".", "v1", "v1..", "garbage.value", std::string(10000, 'a'),
                                                        good + "x", "x" + good})
    EXPECT_FALSE(k.verify(bad, kNow).has_value()) << bad.substr(0, 40);
}

TEST(SessionKeys, ACertificateSessionCarriesItsSubjectSigned) {
  auto k = SessionKeys::from_admin_token("t");
  Session s = k.create(kNow, std::chrono::seconds(60), "CN=alice,O=Example.Org");
  std::string value = k.cookie_value(s);
  EXPECT_EQ(value.substr(0, 3), "v2.");
  auto back = k.verify(value, kNow);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->who, "CN=alice,O=Example.Org");
  EXPECT_EQ(back->sid, s.sid);
  // A token session has no subject and keeps the v1 form.
  auto token = k.verify(k.cookie_value(k.create(kNow, std::chrono::seconds(60))), kNow);
  ASSERT_TRUE(token.has_value());
  EXPECT_EQ(token->who, "");
  // Another subject under the old signature does not verify.
  Session other = s;
  other.who = "CN=mallory";
  std::string forged = k.cookie_value(other);
  forged = forged.substr(0, forged.rfind('.')) + value.substr(value.rfind('.'));
  EXPECT_FALSE(k.verify(forged, kNow).has_value());
}

TEST(SessionKeys, CsrfTokenBelongsToItsSession) {
  auto k = SessionKeys::from_admin_token("t");
  Session a = k.create(kNow, std::chrono::hours(1));
  Session b = k.create(kNow, std::chrono::hours(1));
  EXPECT_TRUE(k.csrf_ok(a, k.csrf_token(a)));
  EXPECT_FALSE(k.csrf_ok(a, k.csrf_token(b)));
  EXPECT_FALSE(k.csrf_ok(a, ""));
  EXPECT_FALSE(k.csrf_ok(a, k.csrf_token(a) + "0"));
  EXPECT_FALSE(SessionKeys::from_admin_token("other").csrf_ok(a, k.csrf_token(a)));
}

TEST(Cookies, ParsesTheNamedCookie) {
  EXPECT_EQ(cookie_from_header("doorman_console=abc", "doorman_console"), "abc");
  EXPECT_EQ(cookie_from_header("a=1; doorman_console=v1.x.y; b=2", "doorman_console"), "v1.x.y");
  EXPECT_EQ(cookie_from_header("xdoorman_console=1;doorman_consolex=2", "doorman_console"), "");
  EXPECT_EQ(cookie_from_header("", "doorman_console"), "");
  EXPECT_EQ(cookie_from_header(";;=;doorman_console", "doorman_console"), "");
}

TEST(Cookies, AttributesAreStrict) {
  std::string c = set_cookie("v", std::chrono::seconds(3600), false);
  EXPECT_EQ(c, "doorman_console=v; Path=/; Max-Age=3600; HttpOnly; SameSite=Strict");
  EXPECT_EQ(set_cookie("v", std::chrono::seconds(10), true),
            "doorman_console=v; Path=/; Max-Age=10; HttpOnly; SameSite=Strict; Secure");
  EXPECT_EQ(clear_cookie(true), "doorman_console=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure");
}

TEST(LoginLimiter, RefusesAfterTheBurstAndRecoversOverTime) {
  LoginLimiter l(3, std::chrono::seconds(60), 100);
  auto t = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(l.allowed("192.0.2.1", t));
    l.failed("192.0.2.1", t);
  }
  EXPECT_FALSE(l.allowed("192.0.2.1", t));
  EXPECT_TRUE(l.allowed("192.0.2.2", t));  // per client
  EXPECT_FALSE(l.allowed("192.0.2.1", t + std::chrono::seconds(59)));
  EXPECT_TRUE(l.allowed("192.0.2.1", t + std::chrono::seconds(60)));
}

TEST(LoginLimiter, RemembersAtMostMaxClients) {
  LoginLimiter l(1, std::chrono::seconds(60), 3);
  auto t = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  for (int i = 0; i < 10; ++i) l.failed("198.51.100." + std::to_string(i), t);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_FALSE(l.allowed("198.51.100.9", t));  // the newest are kept
  EXPECT_TRUE(l.allowed("198.51.100.0", t));   // the oldest went
}

}  // namespace
}  // namespace doorman::directory::console
