// The change a sync makes to one list, and the shrink guard (sans-I/O).
//
// plan_list compares the live list with the result of the sources: what to
// add and what to remove. The change is held back (not applied) unless
// `force` when the result is empty while the list is not (an LDAP outage
// answered with nothing, or a filter that matches nothing), or when it would
// remove more than `max_shrink` of the list. A list that grows is never held
// back. An outage or a bad filter therefore never empties a list.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

namespace doorman::directory::sync {

struct ListPlan {
  std::vector<std::string> add;
  std::vector<std::string> remove;
  std::string held_back;  // "" = apply; else why not
};

ListPlan plan_list(const std::unordered_set<std::string>& live, const std::unordered_set<std::string>& result,
                   double max_shrink, bool force);

}  // namespace doorman::directory::sync
