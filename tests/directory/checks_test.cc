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

// Issue #14, shadow mode: a domain with enforce false lets the unknown
// recipients of its list and of its callout through to the back-end (an
// ACCEPT with the domain's routes and WouldReject), and nothing else.
TEST(DirectoryChecks, ShadowModePassesUnknownRecipientsOnly) {
  v1::Domain list = domain("example.com", v1::DOMAIN_MODE_LIST);
  list.set_enforce(false);
  // Not listed: would be 550 5.1.1 (list), is an accept with the routes.
  Case unknown{"", "bob@example.com", list, {"alice"}, false, {}, 0, "", "", {}};
  Evaluation e = evaluate(facts_for(unknown));
  EXPECT_EQ(e.verdict.decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(e.verdict.code(), 250u);
  EXPECT_EQ(e.verdict.source(), v1::SOURCE_LIST);
  EXPECT_EQ(e.verdict.reason_code(), v1::REASON_NOT_LISTED);
  ASSERT_TRUE(e.verdict.has_would_reject());
  EXPECT_EQ(e.verdict.would_reject().code(), 550u);
  EXPECT_EQ(e.verdict.would_reject().enhanced_code(), "5.1.1");
  EXPECT_EQ(e.verdict.would_reject().reason(), v1::REASON_NOT_LISTED);
  EXPECT_EQ(e.verdict.route().hosts_size(), 2);
  EXPECT_EQ(e.verdict.domain(), "example.com");
  ASSERT_FALSE(e.steps.empty());
  EXPECT_NE(e.steps.back().find("shadow: example.com does not enforce"), std::string::npos) << e.steps.back();
  EXPECT_NE(e.steps.back().find("550 5.1.1 when enforced"), std::string::npos) << e.steps.back();
  // The same domain enforcing (explicitly, or by default) refuses it.
  list.set_enforce(true);
  Case enforced{"", "bob@example.com", list, {"alice"}, false, {}, 0, "", "", {}};
  e = evaluate(facts_for(enforced));
  EXPECT_EQ(e.verdict.code(), 550u);
  EXPECT_FALSE(e.verdict.has_would_reject());
  list.clear_enforce();
  Case by_default{"", "bob@example.com", list, {"alice"}, false, {}, 0, "", "", {}};
  EXPECT_EQ(evaluate(facts_for(by_default)).verdict.code(), 550u);
  list.set_enforce(false);

  // A listed recipient is a plain accept, without WouldReject.
  Case listed{"", "alice@example.com", list, {"alice"}, false, {}, 0, "", "", {}};
  e = evaluate(facts_for(listed));
  EXPECT_EQ(e.verdict.code(), 250u);
  EXPECT_EQ(e.verdict.reason_code(), v1::REASON_LISTED);
  EXPECT_FALSE(e.verdict.has_would_reject());

  // Our own trouble stays a deferral: never a blind accept.
  Case down{"", "bob@example.com", list, {}, true, {}, 0, "", "", {}};
  e = evaluate(facts_for(down));
  EXPECT_EQ(e.verdict.code(), 451u);
  EXPECT_EQ(e.verdict.reason_code(), v1::REASON_LOOKUP_ERROR);
  EXPECT_FALSE(e.verdict.has_would_reject());
  // The routing refusal protects against relaying: it stays.
  Case routed{"", "victim%other.test@example.com", list, {}, false, {}, 0, "", "", {}};
  e = evaluate(facts_for(routed));
  EXPECT_EQ(e.verdict.code(), 550u);
  EXPECT_EQ(e.verdict.enhanced_code(), "5.7.1");
  EXPECT_EQ(e.verdict.reason_code(), v1::REASON_ROUTING);
  EXPECT_FALSE(e.verdict.has_would_reject());

  // Callout: a cached unknown passes, with the cache's age; a miss still
  // defers (450 4.1.1) and asks for a probe, as in enforce mode.
  v1::Domain callout = domain("example.com", v1::DOMAIN_MODE_CALLOUT);
  callout.set_enforce(false);
  Case cached{"", "carol@example.com", callout, {}, false, {}, 0, "", "", {}};
  Facts f = facts_for(cached);
  store::CacheEntry entry;
  entry.result = "unknown";
  entry.checked_ms = f.now_ms - 90000;
  entry.backend = "10.0.0.1:25";
  f.cached["carol"] = entry;
  e = evaluate(f);
  EXPECT_EQ(e.verdict.decision(), v1::DECISION_ACCEPT);
  EXPECT_EQ(e.verdict.source(), v1::SOURCE_CACHE);
  EXPECT_EQ(e.verdict.reason_code(), v1::REASON_CALLOUT_UNKNOWN);
  ASSERT_TRUE(e.verdict.has_would_reject());
  EXPECT_EQ(e.verdict.would_reject().reason(), v1::REASON_CALLOUT_UNKNOWN);
  EXPECT_GE(e.verdict.cache_age_ms(), 90000);
  EXPECT_TRUE(e.callout.applies);
  EXPECT_FALSE(e.callout.probe);
  Case miss{"", "dave@example.com", callout, {}, false, {}, 0, "", "", {}};
  e = evaluate(facts_for(miss));
  EXPECT_EQ(e.verdict.code(), 450u);
  EXPECT_EQ(e.verdict.reason_code(), v1::REASON_CALLOUT_PENDING);
  EXPECT_FALSE(e.verdict.has_would_reject());
  EXPECT_TRUE(e.callout.probe);
}

// Issue #14: every verdict carries a typed reason for the edge's decision log.
TEST(DirectoryChecks, VerdictsCarryATypedReason) {
  const auto list = domain("example.com", v1::DOMAIN_MODE_LIST);
  const auto all = domain("example.com", v1::DOMAIN_MODE_ACCEPT_ALL);
  struct R {
    const char* address;
    std::optional<v1::Domain> config;
    v1::Reason want;
  };
  for (const R& r : std::vector<R>{{"not an address", list, v1::REASON_SYNTAX},
                                   {"a@other.org", std::nullopt, v1::REASON_RELAY_DENIED},
                                   {"postmaster@example.com", list, v1::REASON_POSTMASTER},
                                   {"anyone@example.com", all, v1::REASON_ACCEPT_ALL},
                                   {"alice@example.com", list, v1::REASON_LISTED},
                                   {"bob@example.com", list, v1::REASON_NOT_LISTED}}) {
    SCOPED_TRACE(r.address);
    Case c{"", r.address, r.config, {"alice"}, false, {}, 0, "", "", {}};
    EXPECT_EQ(evaluate(facts_for(c)).verdict.reason_code(), r.want);
  }
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
