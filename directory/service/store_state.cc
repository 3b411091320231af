#include "directory/service/store_state.h"

#include "common/log.h"
#include "directory/metrics.h"
#include "directory/store/store.h"

namespace doorman::directory::service {

void StoreState::observe(bool configured) {
  const State now = configured ? State::kConfigured : State::kMissing;
  const State before = state_.exchange(now);
  directory_metrics().store_configured().set(configured ? 1 : 0);
  if (configured) {
    if (before == State::kMissing) log::info("store_configured").kv("marker", store::marker_name());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  const auto t = std::chrono::steady_clock::now();
  if (before == State::kMissing && t - last_warn_ < kWarnEvery) return;
  last_warn_ = t;
  log::warn("store_not_configured")
      .kv("marker", store::marker_name())
      .kv("message",
          "the Redis store has no configuration marker (Redis lost its data?): every recipient is deferred with "
          "451 4.3.0 until the domains are applied again");
}

}  // namespace doorman::directory::service
