#include "edge/net/backend_limit.h"

#include "edge/metrics.h"

namespace doorman::edge {

bool BackendLimiter::try_acquire(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t& n = in_use_[key];
    if (max_ > 0 && n >= max_) {
      if (n == 0) in_use_.erase(key);
      if (auto* m = edge_metrics()) m->backend_limit_refusals.inc();
      return false;
    }
    ++n;
  }
  if (auto* m = edge_metrics()) m->backend_connections.add(1);
  return true;
}

void BackendLimiter::release(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = in_use_.find(key);
    if (it == in_use_.end()) return;
    if (--it->second <= 0) in_use_.erase(it);
  }
  if (auto* m = edge_metrics()) m->backend_connections.add(-1);
}

int64_t BackendLimiter::in_use(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_use_.find(key);
  return it == in_use_.end() ? 0 : it->second;
}

}  // namespace doorman::edge
