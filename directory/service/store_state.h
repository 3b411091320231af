// Whether the directory's Redis store is configured: the marker key
// (store/keys.h "configured") that every admin write creating or
// updating a domain (and every list replace, so every apply) sets.
//
// A Redis that restarted empty, or was flushed, has no marker: the checks
// then defer every recipient (451 4.3.0, checks/lookup_error.cc) instead of
// refusing them all as unknown. StoreState is what the rest of the process
// knows about it, from two sources: every CheckRecipients lookup (the marker
// rides in its pipeline, store::fetch_group) and the server's probe every
// second (Server::health_loop, store::check_marker), so an idle directory
// knows too. It drives /readyz (not ready while missing or not yet known),
// the gauge doorman_directory_store_configured (1/0) and the log: one warn
// line `event=store_not_configured` when the marker goes missing, repeated
// at most once a minute while it stays missing, and an info line when it is
// back. Thread-safe; no I/O.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>

namespace doorman::directory::service {

class StoreState {
 public:
  enum class State { kUnknown, kMissing, kConfigured };

  void observe(bool configured);
  State state() const { return state_.load(); }
  bool configured() const { return state() == State::kConfigured; }

  static constexpr std::chrono::seconds kWarnEvery{60};

 private:
  std::atomic<State> state_{State::kUnknown};
  std::mutex mu_;  // orders the log lines
  std::chrono::steady_clock::time_point last_warn_{};
};

}  // namespace doorman::directory::service
