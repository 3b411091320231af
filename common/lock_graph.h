// gRPC's locks are absl::Mutex. Debian's Abseil is built with its deadlock
// detection on: every acquisition updates a global lock-order graph
// (absl::synchronization_internal::GraphCycles, visible in bench/profile.sh
// output). The services switch it off at start-up; tests keep it.
#pragma once

#include <absl/synchronization/mutex.h>

namespace doorman {

inline void disable_lock_order_checks() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace doorman
