#include "directory/sync/plan.h"

#include <algorithm>
#include <cstdio>

namespace doorman::directory::sync {

ListPlan plan_list(const std::unordered_set<std::string>& live, const std::unordered_set<std::string>& result,
                   double max_shrink, bool force) {
  ListPlan plan;
  for (const auto& a : result)
    if (!live.count(a)) plan.add.push_back(a);
  for (const auto& a : live)
    if (!result.count(a)) plan.remove.push_back(a);
  std::sort(plan.add.begin(), plan.add.end());
  std::sort(plan.remove.begin(), plan.remove.end());
  if (force || plan.remove.empty()) return plan;
  if (result.empty()) {
    plan.held_back = "empty result would remove all " + std::to_string(live.size()) + " addresses";
  } else if (static_cast<double>(plan.remove.size()) > max_shrink * static_cast<double>(live.size())) {
    char share[64];
    std::snprintf(share, sizeof share, "%.1f%% > max_shrink %.1f%%",
                  100.0 * static_cast<double>(plan.remove.size()) / static_cast<double>(live.size()), 100.0 * max_shrink);
    plan.held_back = "would remove " + std::to_string(plan.remove.size()) + " of " + std::to_string(live.size()) +
                     " addresses (" + share + ")";
  }
  return plan;
}

}  // namespace doorman::directory::sync
