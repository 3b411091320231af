// Table-driven tests of the recipient checks: facts in, verdict out. Pure:
// no Redis, no sockets.
#include <gtest/gtest.h>

#include "directory/checks/registry.h"
#include "directory/store/normalise.h"

namespace doorman::directory::checks {
namespace {

namespace v1 = doorman::v1;

v1::Domain domain(const std::string& name, v1::DomainMode mode, bool cs = false, const char* sep = "+") {
  v1::Domain d;
  d.set_name(name);
  d.set_mode(mode);
  d.add_routes("10.0.0.1:25");
  d.add_routes("10.0.0.2:25");
  d.set_local_part_case_sensitive(cs);
  d.set_subaddress_separator(sep);
  return d;
}

struct Case {
  const char* name;
  const char* address;
  std::optional<v1::Domain> config;
  std::vector<std::string> listed;  // normalised local parts in the list
  bool redis_fails;
  v1::Decision decision;
  unsigned code;
  const char* enhanced;
  const char* text;
  v1::Source source;
};

Facts facts_for(const Case& c) {
  store::GroupFacts group;
  smtp::PathResult p = smtp::parse_mailbox(c.address);
  if (p.ok()) {
    auto& df = group[smtp::ascii_lower(p.mailbox.domain)];
    df.config = c.config;
    for (const auto& cand : store::lookup_candidates(p.mailbox.local)) df.asked.insert(cand);
    if (c.config) df.asked.insert(store::normalise_local(p.mailbox.local, *c.config));
    for (const auto& l : c.listed)
      if (df.asked.count(l)) df.listed.insert(l);
  }
  Status lookup = c.redis_fails ? Status::Unavailable("redis: Connection refused") : Status::Ok();
  return make_facts(c.address, group, lookup);
}

TEST(DirectoryChecks, Table) {
  const auto list = domain("example.com", v1::DOMAIN_MODE_LIST);
  const auto cs = domain("example.com", v1::DOMAIN_MODE_LIST, true);
  const auto nosub = domain("example.com", v1::DOMAIN_MODE_LIST, false, "");
  const auto dash = domain("example.com", v1::DOMAIN_MODE_LIST, false, "-");
  const auto all = domain("example.com", v1::DOMAIN_MODE_ACCEPT_ALL);
  const auto callout = domain("example.com", v1::DOMAIN_MODE_CALLOUT);
  using D = v1::Decision;
  const D A = v1::DECISION_ACCEPT, R = v1::DECISION_REJECT, F = v1::DECISION_DEFER;
  const std::vector<Case> cases = {
      {"syntax", "not an address", list, {}, false, R, 501, "5.1.3", "Bad recipient address syntax", v1::SOURCE_POLICY},
      {"syntax before redis", "a@@b", list, {}, true, R, 501, "5.1.3", "Bad recipient address syntax", v1::SOURCE_POLICY},
      {"non-ascii", "j\xc3\xb6rg@example.com", list, {}, false, R, 501, "5.1.3", "Bad recipient address syntax",
       v1::SOURCE_POLICY},
      {"redis down", "alice@example.com", list, {"alice"}, true, F, 451, "4.4.3",
       "<alice@example.com>: Temporary lookup failure, try again later", v1::SOURCE_ERROR},
      {"relay", "a@other.org", std::nullopt, {}, false, R, 550, "5.7.1", "<a@other.org>: Relay access denied",
       v1::SOURCE_POLICY},
      {"postmaster", "PostMaster@Example.COM", list, {}, false, A, 250, "2.1.5", "OK", v1::SOURCE_POLICY},
      {"postmaster callout", "postmaster@example.com", callout, {}, false, A, 250, "2.1.5", "OK", v1::SOURCE_POLICY},
      {"accept-all", "anyone@example.com", all, {}, false, A, 250, "2.1.5", "OK", v1::SOURCE_POLICY},
      {"listed", "alice@example.com", list, {"alice"}, false, A, 250, "2.1.5", "OK", v1::SOURCE_LIST},
      {"listed any case", "ALICE@EXAMPLE.COM", list, {"alice"}, false, A, 250, "2.1.5", "OK", v1::SOURCE_LIST},
      {"subaddress", "Alice+news@example.com", list, {"alice"}, false, A, 250, "2.1.5", "OK", v1::SOURCE_LIST},
      {"not listed", "bob@example.com", list, {"alice"}, false, R, 550, "5.1.1",
       "<bob@example.com>: Recipient address rejected: User unknown", v1::SOURCE_LIST},
      {"case-sensitive miss", "Alice@example.com", cs, {"alice"}, false, R, 550, "5.1.1",
       "<Alice@example.com>: Recipient address rejected: User unknown", v1::SOURCE_LIST},
      {"case-sensitive hit", "Alice@example.com", cs, {"Alice"}, false, A, 250, "2.1.5", "OK", v1::SOURCE_LIST},
      {"no sub-addressing", "alice+x@example.com", nosub, {"alice"}, false, R, 550, "5.1.1",
       "<alice+x@example.com>: Recipient address rejected: User unknown", v1::SOURCE_LIST},
      {"dash separator", "alice-x@example.com", dash, {"alice"}, false, A, 250, "2.1.5", "OK", v1::SOURCE_LIST},
      {"leading separator kept", "+x@example.com", list, {"+x"}, false, A, 250, "2.1.5", "OK", v1::SOURCE_LIST},
      {"quoted local part", "\"al ice\"@example.com", list, {"al ice"}, false, A, 250, "2.1.5", "OK",
       v1::SOURCE_LIST},
      {"callout pending", "alice@example.com", callout, {"alice"}, false, F, 450, "4.1.1",
       "<alice@example.com>: Recipient address verification in progress", v1::SOURCE_PROBE},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Evaluation e = evaluate(facts_for(c));
    EXPECT_EQ(e.verdict.decision(), c.decision);
    EXPECT_EQ(e.verdict.code(), c.code);
    EXPECT_EQ(e.verdict.enhanced_code(), c.enhanced);
    EXPECT_EQ(e.verdict.text(), c.text);
    EXPECT_EQ(e.verdict.source(), c.source);
    EXPECT_FALSE(e.verdict.reason().empty());
    EXPECT_FALSE(e.steps.empty());
    if (c.decision == v1::DECISION_ACCEPT) {
      EXPECT_EQ(e.verdict.domain(), "example.com");
      ASSERT_EQ(e.verdict.route().hosts_size(), 2);
      EXPECT_EQ(e.verdict.route().hosts(0), "10.0.0.1:25");
    }
    // Never a 5xx for our own trouble; never leak a back-end host in text.
    if (c.source == v1::SOURCE_ERROR) {
      EXPECT_EQ(e.verdict.code() / 100, 4u);
    }
    EXPECT_EQ(e.verdict.text().find("10.0.0"), std::string::npos);
    // CheckRecipients does not explain: the same verdict, no step lines built.
    Evaluation quiet = evaluate(facts_for(c), /*explain=*/false);
    EXPECT_EQ(quiet.verdict.SerializeAsString(), e.verdict.SerializeAsString());
    EXPECT_TRUE(quiet.steps.empty());
  }
}

TEST(DirectoryChecks, RegistryOrder) {
  std::vector<std::string> names;
  for (const auto& c : registry()) names.emplace_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"syntax", "lookup_error", "guarded_domain", "routing", "postmaster",
                                             "accept_all", "list", "callout"}));
}

// Issue #12: '%', '!' and a quoted '@' in the local part route mail through
// a back-end that honours them; refused in every mode unless the domain
// opts out.
TEST(DirectoryChecks, RoutingLocalPartsAreRefusedInEveryMode) {
  const std::vector<std::string> routed = {"victim%other.test@example.com", "other.test!victim@example.com",
                                           "\"victim@other.test\"@example.com", "\"victim%other\"@example.com",
                                           "Postmaster%other.test@Example.COM", "a%b%c@example.com"};
  for (auto mode : {v1::DOMAIN_MODE_LIST, v1::DOMAIN_MODE_CALLOUT, v1::DOMAIN_MODE_ACCEPT_ALL}) {
    for (const auto& address : routed) {
      SCOPED_TRACE(store::mode_name(mode) + " " + address);
      v1::Domain d = domain("example.com", mode);
      // Listed in its routed form: still refused.
      Case c{"", address.c_str(), d, {"victim%other.test", "other.test!victim", "victim@other.test"},
             false, {}, 0, "", "", {}};
      Evaluation e = evaluate(facts_for(c));
      EXPECT_EQ(e.verdict.decision(), v1::DECISION_REJECT);
      EXPECT_EQ(e.verdict.code(), 550u);
      EXPECT_EQ(e.verdict.enhanced_code(), "5.7.1");
      EXPECT_EQ(e.verdict.source(), v1::SOURCE_POLICY);
      EXPECT_NE(e.verdict.text().find(">: Recipient address rejected: routing in the local part is not allowed"),
                std::string::npos)
          << e.verdict.text();
      EXPECT_FALSE(e.callout.probe);  // no probe for it either
      ASSERT_FALSE(e.steps.empty());
      EXPECT_NE(e.steps.back().find("routing: local part contains"), std::string::npos) << e.steps.back();
      // The opt-out: the usual checks decide, and explain says why.
      d.set_allow_routing_local_parts(true);
      Case open{"", address.c_str(), d, {}, false, {}, 0, "", "", {}};
      e = evaluate(facts_for(open));
      EXPECT_NE(e.verdict.enhanced_code(), "5.7.1");
      bool said = false;
      for (const auto& step : e.steps) said = said || step.find("allowed for example.com") != std::string::npos;
      EXPECT_TRUE(said);
    }
  }
  // The exact reply.
  Case c{"", "victim%other.test@example.com", domain("example.com", v1::DOMAIN_MODE_ACCEPT_ALL), {}, false,
         {}, 0, "", "", {}};
  EXPECT_EQ(evaluate(facts_for(c)).verdict.text(),
            "<victim%other.test@example.com>: Recipient address rejected: routing in the local part is not allowed");
  // A domain that is not guarded keeps its "Relay access denied".
  Case relay{"", "victim%x@other.org", std::nullopt, {}, false, {}, 0, "", "", {}};
  EXPECT_EQ(evaluate(facts_for(relay)).verdict.text(), "<victim%x@other.org>: Relay access denied");
  // Other local parts are untouched, and so is the plain postmaster.
  Case plain{"", "vic.tim+tag@example.com", domain("example.com", v1::DOMAIN_MODE_ACCEPT_ALL), {}, false,
             {}, 0, "", "", {}};
  EXPECT_EQ(evaluate(facts_for(plain)).verdict.code(), 250u);
}

TEST(DirectoryChecks, StepsExplainTheDecision) {
  Case c{"", "bob@example.com", domain("example.com", v1::DOMAIN_MODE_LIST), {}, false, {}, 0, "", "", {}};
  Evaluation e = evaluate(facts_for(c));
  ASSERT_EQ(e.steps.size(), 3u);
  EXPECT_NE(e.steps[0].find("syntax: ok"), std::string::npos);
  EXPECT_NE(e.steps[1].find("guarded"), std::string::npos);
  EXPECT_NE(e.steps[2].find("not in the list"), std::string::npos);
}

}  // namespace
}  // namespace doorman::directory::checks
