// A per-back-end cap on the connections this edge process holds for live
// relay (issue #12): each session with an accepted recipient holds one
// back-end connection for its whole transaction (minutes, for a slow
// client), and `postmaster@` is always accepted, so without a cap any client
// could make the edge open as many back-end connections as it has sessions.
//
// Counts connections in use by a transaction, per "host:port", across all
// I/O threads (one mutex, taken when a transaction opens and when it ends,
// never per command). Idle pooled connections are not counted: their number
// is bounded by backend-pool-max-idle per thread. When every back-end of a
// route is full the recipients get 451 4.4.5 (relay.h).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace doorman::edge {

class BackendLimiter {
 public:
  explicit BackendLimiter(int64_t max_per_backend) : max_(max_per_backend) {}
  // Counts one more connection to `key`; false (nothing counted) at the
  // limit. A limit of 0 means no limit.
  bool try_acquire(const std::string& key);
  void release(const std::string& key);
  int64_t in_use(const std::string& key) const;
  int64_t max() const { return max_; }

 private:
  const int64_t max_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> in_use_;
};

}  // namespace doorman::edge
