// The LDAP sync's pure parts (directory/sync/: addresses, plan, source); its
// store functions are tested in store_test.cc (DirectoryStore.Sync*).
#include <gtest/gtest.h>

#include "directory/sync/addresses.h"
#include "directory/sync/plan.h"
#include "directory/sync/source.h"

namespace doorman::directory {
namespace {

namespace v1 = doorman::v1;

TEST(SyncAddresses, ProxyAddressesKeepsOnlySmtpTypes) {
  EXPECT_EQ(sync::address_value("proxyAddresses", "SMTP:Alice@Example.com"), "Alice@Example.com");
  EXPECT_EQ(sync::address_value("proxyaddresses", "smtp:a.smith@example.com"), "a.smith@example.com");
  EXPECT_FALSE(sync::address_value("proxyAddresses", "X500:/o=Example/cn=alice"));
  EXPECT_FALSE(sync::address_value("proxyAddresses", "SIP:alice@example.com"));
  EXPECT_FALSE(sync::address_value("proxyAddresses", "alice@example.com"));  // no type: not an SMTP address
  EXPECT_EQ(sync::address_value("mail", " alice@example.com\r\n"), "alice@example.com");
}

TEST(SyncAddresses, SplitsByDomainAndCountsTheRest) {
  sync::AddressSet set({"example.com", "example.org"});
  set.add_value("mail", "alice@Example.COM");
  set.add_value("proxyAddresses", "smtp:alice@example.org");
  set.add_value("proxyAddresses", "SMTP:alice@example.com");  // same address twice
  set.add_value("mail", "erin@other.test");
  set.add_value("mail", "not an address");
  set.add_value("proxyAddresses", "X400:c=US;a= ;p=Example");
  ASSERT_EQ(set.by_domain().size(), 2u);
  EXPECT_EQ(set.by_domain().at("example.com").size(), 1u);
  EXPECT_EQ(set.by_domain().at("example.org").count("alice"), 1u);
  EXPECT_EQ(set.addresses(), 2u);
  EXPECT_EQ(set.ignored(), 1u);
  EXPECT_EQ(set.invalid(), 1u);
}

TEST(SyncAddresses, StopsGrowingPastItsLimit) {
  sync::AddressSet set({"example.com"}, 2);
  set.add_value("mail", "a@example.com");
  set.add_value("mail", "a@example.com");  // a duplicate does not count
  set.add_value("mail", "b@example.com");
  EXPECT_FALSE(set.overflowed());
  set.add_value("mail", "c@example.com");
  EXPECT_TRUE(set.overflowed());
  EXPECT_EQ(set.addresses(), 2u);
}

TEST(SyncPlan, GrowsFreelyAndHoldsBackLargeShrinksAndEmptyResults) {
  std::unordered_set<std::string> live;
  for (int i = 0; i < 100; ++i) live.insert("u" + std::to_string(i));
  auto result = live;
  result.insert("new");
  result.erase("u1");
  sync::ListPlan p = sync::plan_list(live, result, 0.10, false);
  EXPECT_EQ(p.held_back, "");
  EXPECT_EQ(p.add, std::vector<std::string>{"new"});
  EXPECT_EQ(p.remove, std::vector<std::string>{"u1"});
  // 10 of 100 is allowed, 11 is not.
  result = live;
  for (int i = 0; i < 10; ++i) result.erase("u" + std::to_string(i));
  EXPECT_EQ(sync::plan_list(live, result, 0.10, false).held_back, "");
  result.erase("u10");
  p = sync::plan_list(live, result, 0.10, false);
  EXPECT_EQ(p.held_back, "would remove 11 of 100 addresses (11.0% > max_shrink 10.0%)");
  EXPECT_EQ(p.remove.size(), 11u);
  EXPECT_EQ(sync::plan_list(live, result, 0.10, true).held_back, "");
  p = sync::plan_list(live, {}, 1.0, false);
  EXPECT_EQ(p.held_back, "empty result would remove all 100 addresses");
  EXPECT_EQ(sync::plan_list({}, {}, 0.1, false).held_back, "");
}

TEST(SyncSource, DefaultsWorkForActiveDirectory) {
  v1::LdapSource s;
  s.set_name("corp");
  s.set_url("ldap://dc1.example.com");
  s.set_base_dn("dc=example,dc=com");
  s.set_bind_dn("CN=doorman,CN=Users,DC=example,DC=com");
  s.set_bind_password_file("/run/secrets/ldap");
  s.add_domains("Example.COM");
  s.set_exclude_disabled(true);
  ASSERT_EQ(sync::validate_source(&s), "");
  EXPECT_EQ(s.tls(), "starttls");
  EXPECT_EQ(s.scope(), "sub");
  EXPECT_EQ(s.filter(),
            "(&(|(objectClass=user)(objectClass=group)(objectClass=publicFolder))(|(mail=*)(proxyAddresses=*))"
            "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))");
  EXPECT_EQ(s.attributes().size(), 2);
  EXPECT_EQ(s.domains(0), "example.com");
  EXPECT_EQ(s.page_size(), 500u);
  EXPECT_DOUBLE_EQ(s.max_shrink(), 0.10);
}

TEST(SyncSource, RefusesWhatCannotWork) {
  auto check = [](auto edit) {
    v1::LdapSource s;
    s.set_name("corp");
    s.set_url("ldaps://dc1.example.com:636");
    s.set_base_dn("dc=example,dc=com");
    s.add_domains("example.com");
    edit(s);
    return sync::validate_source(&s);
  };
  EXPECT_EQ(check([](v1::LdapSource&) {}), "");
  EXPECT_NE(check([](v1::LdapSource& s) { s.set_url("http://x"); }), "");
  EXPECT_NE(check([](v1::LdapSource& s) { s.set_tls("none"); }), "");  // ldaps:// is TLS
  EXPECT_NE(check([](v1::LdapSource& s) { s.set_bind_dn("cn=x"); }), "");  // without a password file
  EXPECT_NE(check([](v1::LdapSource& s) { s.set_page_size(5000); }), "");
  EXPECT_NE(check([](v1::LdapSource& s) { s.set_max_shrink(1.5); }), "");
  EXPECT_NE(check([](v1::LdapSource& s) { s.clear_domains(); }), "");
  EXPECT_NE(check([](v1::LdapSource& s) { s.set_name("Bad Name"); }), "");
  EXPECT_NE(check([](v1::LdapSource& s) { s.set_filter("mail=*"); }), "");
}

}  // namespace
}  // namespace doorman::directory
