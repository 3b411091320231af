// service/rejection.h: "rejecting unknown recipients?" for every mode, an
// empty list, a catch-all and an unreachable callout back-end.
#include "directory/service/rejection.h"

#include <gtest/gtest.h>

namespace doorman::directory::service {
namespace {

namespace v1 = doorman::v1;

v1::Domain domain(v1::DomainMode mode, uint64_t count = 0) {
  v1::Domain d;
  d.set_name("example.com");
  d.set_mode(mode);
  d.set_address_count(count);
  return d;
}

TEST(Rejection, ListWithAddressesRejects) {
  auto v = rejection_verdict(domain(v1::DOMAIN_MODE_LIST, 3), "");
  EXPECT_TRUE(v.rejecting());
  EXPECT_EQ(v.reason(), "");
}

TEST(Rejection, EmptyListIsNotRejectingUnknownOnly) {
  auto v = rejection_verdict(domain(v1::DOMAIN_MODE_LIST, 0), "");
  EXPECT_FALSE(v.rejecting());
  EXPECT_NE(v.reason().find("address list is empty"), std::string::npos);
}

TEST(Rejection, AcceptAllNeverRejects) {
  auto v = rejection_verdict(domain(v1::DOMAIN_MODE_ACCEPT_ALL, 10), "");
  EXPECT_FALSE(v.rejecting());
  EXPECT_NE(v.reason().find("accept-all mode"), std::string::npos);
}

TEST(Rejection, ShadowModeDoesNotReject) {
  auto d = domain(v1::DOMAIN_MODE_LIST, 3);
  d.set_enforce(true);
  EXPECT_TRUE(rejection_verdict(d, "").rejecting());
  d.set_enforce(false);
  d.mutable_shadow()->set_would_reject(7);
  auto v = rejection_verdict(d, "");
  EXPECT_FALSE(v.rejecting());
  EXPECT_NE(v.reason().find("shadow mode"), std::string::npos);
  EXPECT_NE(v.reason().find("7 so far"), std::string::npos);
}

TEST(Rejection, CalloutDependsOnTheBackEnd) {
  auto d = domain(v1::DOMAIN_MODE_CALLOUT);
  auto unknown = rejection_verdict(d, "");
  EXPECT_TRUE(unknown.rejecting());
  EXPECT_NE(unknown.reason().find("not probed yet"), std::string::npos);

  d.mutable_catch_all()->set_state(v1::CatchAllStatus::STATE_NORMAL);
  auto normal = rejection_verdict(d, "");
  EXPECT_TRUE(normal.rejecting());
  EXPECT_EQ(normal.reason(), "");

  d.mutable_catch_all()->set_state(v1::CatchAllStatus::STATE_CATCH_ALL);
  auto catch_all = rejection_verdict(d, "");
  EXPECT_FALSE(catch_all.rejecting());
  EXPECT_NE(catch_all.reason().find("catch-all"), std::string::npos);
  EXPECT_NE(catch_all.reason().find("accepted"), std::string::npos);
  d.set_catch_all_policy(v1::CATCH_ALL_POLICY_DEFER);
  EXPECT_NE(rejection_verdict(d, "").reason().find("deferred"), std::string::npos);

  auto down = rejection_verdict(d, "connection refused");
  EXPECT_FALSE(down.rejecting());
  EXPECT_NE(down.reason().find("unreachable (connection refused)"), std::string::npos);
}

TEST(Rejection, ListWithCalloutFallbackFollowsTheBackEnd) {
  auto d = domain(v1::DOMAIN_MODE_LIST, 0);
  d.set_callout_fallback(true);
  EXPECT_TRUE(rejection_verdict(d, "").rejecting());  // empty list is fine: the back-end decides
  EXPECT_FALSE(rejection_verdict(d, "timeout").rejecting());
}

}  // namespace
}  // namespace doorman::directory::service
