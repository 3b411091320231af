// The ordered table of recipient checks and the evaluator that runs them.
//
// make_facts() turns one address and the group's fetched facts into Facts;
// evaluate() runs the table in order and returns the first verdict, with
// every check's step line when `explain` (Explain; CheckRecipients does not
// read them, so they are not built). Both call evaluate(),
// so their answers cannot differ. Adding a check: one file, one line in
// kChecks (registry.cc), one test. Pure; no I/O.
#pragma once

#include <string_view>
#include <vector>

#include "directory/checks/facts.h"
#include "directory/store/store.h"

namespace doorman::directory::checks {

struct NamedCheck {
  std::string_view name;
  Check fn;
};

const std::vector<NamedCheck>& registry();

struct Evaluation {
  doorman::v1::Verdict verdict;
  Steps steps;
  CalloutPlan callout;  // set when the callout check decided
};

// Refresh ages for cached callout results (milliseconds).
struct CalloutAges {
  int64_t positive_refresh_ms = 24LL * 3600 * 1000;
  int64_t negative_refresh_ms = 10LL * 60 * 1000;
  int64_t catch_all_refresh_ms = 3600LL * 1000;
};

// `group` is the result of store::fetch_group (ignored when `lookup` is not
// ok).
Facts make_facts(std::string_view address, const store::GroupFacts& group, const Status& lookup,
                 const CalloutAges& ages = {});
Evaluation evaluate(const Facts& facts, bool explain = true);

}  // namespace doorman::directory::checks
