// The edge's Prometheus series (docs/metrics.md lists them all). Created once
// at start-up; every update is a relaxed atomic, no lock on the data path.
// Labels come only from fixed sets: never an address, a domain or an IP.
#pragma once

#include <array>
#include <map>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "edge/session/session.h"

namespace doorman::edge {

class EdgeMetrics : public SessionObserver {
 public:
  explicit EdgeMetrics(metrics::Registry& r);

  void command(std::string_view verb) override;
  void reply(int code) override;
  void recipient(RcptVerdict verdict, RcptSource source) override;
  void relay(RelayOutcome outcome) override;

  void session_ended(SessionEnd end);
  // After each load of the STARTTLS certificate (start-up and reloads).
  void tls_loaded(bool ok, double not_after);

  metrics::Gauge& sessions_active;
  metrics::Gauge& draining;
  metrics::Histogram& directory_duration;
  metrics::Counter& directory_ok;
  metrics::Counter& directory_error;
  metrics::Histogram& directory_batch_size;
  metrics::Histogram& directory_queue_wait;
  metrics::Counter& directory_queue_expired;
  metrics::Counter& directory_batch_fallback;
  metrics::Counter& directory_asked_alone;
  metrics::Histogram& relay_duration;
  metrics::Counter& relay_bytes;
  metrics::Counter& backend_connect_failures;
  metrics::Gauge& backend_idle;
  metrics::Gauge& backend_connections;
  metrics::Counter& backend_limit_refusals;
  metrics::Counter& handler_exceptions;
  metrics::Counter& proxy_untrusted;
  metrics::Counter& tls_handshake_ok;
  metrics::Counter& tls_handshake_failed;
  metrics::Counter& tls_load_ok;
  metrics::Counter& tls_load_failed;
  metrics::Gauge& tls_cert_expiry;
  metrics::Counter& backend_tls_ok;
  metrics::Counter& backend_tls_failed;

 private:
  metrics::Registry& registry_;
  std::map<std::string, metrics::Counter*, std::less<>> commands_;
  std::array<metrics::Counter*, 4> replies_{};
  // Indexed by the enums (edge/session/outcomes.h): no lookup by string.
  std::array<std::array<metrics::Counter*, kRcptSourceLabels.size()>, kRcptVerdictLabels.size()> recipients_{};
  std::array<metrics::Counter*, kRelayOutcomeLabels.size()> relays_{};
  std::array<metrics::Counter*, kSessionEndLabels.size()> ends_{};
};

// The process-wide instance (set up by main; null in unit tests).
EdgeMetrics* edge_metrics();
void set_edge_metrics(EdgeMetrics* m);

}  // namespace doorman::edge
