#include "edge/net/backend.h"

#include "edge/metrics.h"

namespace doorman::edge {
namespace {

// Runs `change` on the pool and moves the idle gauge by what it changed.
template <typename F>
auto tracked(SmtpClientPool& pool, F change) {
  const auto before = static_cast<double>(pool.idle());
  auto result = change();
  if (auto* m = edge_metrics()) m->backend_idle.add(static_cast<double>(pool.idle()) - before);
  return result;
}

}  // namespace

std::shared_ptr<SmtpClientConnection> BackendPool::take(const std::string& key) {
  return tracked(pool_, [&] { return pool_.take(key); });
}

void BackendPool::put(std::shared_ptr<SmtpClientConnection> c) {
  tracked(pool_, [&] {
    pool_.put(std::move(c));
    return 0;
  });
}

}  // namespace doorman::edge
