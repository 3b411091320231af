#include "edge/metrics.h"

namespace doorman::edge {
namespace {
EdgeMetrics* g_metrics = nullptr;

metrics::Counter* find(const std::map<std::string, metrics::Counter*, std::less<>>& m, std::string_view key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : it->second;
}
}  // namespace

EdgeMetrics* edge_metrics() { return g_metrics; }
void set_edge_metrics(EdgeMetrics* m) { g_metrics = m; }

EdgeMetrics::EdgeMetrics(metrics::Registry& r)
    : sessions_active(r.gauge("doorman_edge_sessions_active", "SMTP sessions open now.")),
      draining(r.gauge("doorman_edge_draining", "1 while the edge is shutting down gracefully.")),
      directory_duration(r.histogram("doorman_edge_directory_request_duration_seconds",
                                     "Duration of recipient-check calls to the directory.",
                                     metrics::latency_buckets())),
      directory_ok(r.counter("doorman_edge_directory_requests_total", "Recipient-check calls by result.",
                             {{"result", "ok"}})),
      directory_error(r.counter("doorman_edge_directory_requests_total", "Recipient-check calls by result.",
                                {{"result", "error"}})),
      directory_batch_size(r.histogram("doorman_edge_directory_batch_size",
                                       "Recipient checks (RCPT groups, from any sessions) per CheckBatch call.",
                                       {1, 2, 4, 8, 16, 32, 64})),
      directory_queue_wait(r.histogram("doorman_edge_directory_queue_wait_seconds",
                                       "Time a recipient check waited for a free directory call slot "
                                       "(directory-batch-in-flight) before it was sent.",
                                       metrics::latency_buckets())),
      directory_queue_expired(r.counter("doorman_edge_directory_queue_expired_total",
                                        "Recipient checks whose deadline passed while they waited to be sent "
                                        "(answered 451 4.4.3).")),
      directory_batch_fallback(r.counter("doorman_edge_directory_batch_fallback_total",
                                         "Times the directory answered CheckBatch with UNIMPLEMENTED (an older "
                                         "directory): the edge fell back to one CheckRecipients call per check.")),
      directory_asked_alone(r.counter("doorman_edge_directory_asked_alone_total",
                                      "Recipient checks a CheckBatch answer sent back to be asked alone (they need a "
                                      "live callout probe), then sent as their own CheckRecipients call.")),
      relay_duration(r.histogram("doorman_edge_relay_duration_seconds",
                                 "From the final dot sent to the back-end to its reply.", metrics::latency_buckets())),
      relay_bytes(r.counter("doorman_edge_relay_bytes_total", "Message bytes written to back-ends.")),
      backend_connect_failures(r.counter("doorman_edge_backend_connect_failures_total",
                                         "Failed connections to back-ends (each route entry tried).")),
      backend_idle(r.gauge("doorman_edge_backend_connections_idle", "Idle pooled back-end connections.")),
      backend_connections(r.gauge("doorman_edge_backend_connections_active",
                                  "Back-end connections held by a relay transaction now (backend-max-connections caps them per back-end).")),
      backend_limit_refusals(r.counter("doorman_edge_backend_limit_refusals_total",
                                       "Back-end connections not opened because the back-end was at backend-max-connections.")),
      handler_exceptions(r.counter("doorman_edge_handler_exceptions_total",
                                   "Exceptions that escaped an I/O handler; logged, and the edge went on.")),
      proxy_untrusted(r.counter("doorman_edge_proxy_untrusted_total",
                                "Connections closed because PROXY protocol is on and the peer is not a trusted source.")),
      tls_handshake_ok(r.counter("doorman_edge_tls_handshakes_total", "STARTTLS handshakes by result.",
                                 {{"result", "ok"}})),
      tls_handshake_failed(r.counter("doorman_edge_tls_handshakes_total", "STARTTLS handshakes by result.",
                                     {{"result", "failed"}})),
      tls_load_ok(r.counter("doorman_edge_tls_certificate_loads_total",
                            "Loads of the STARTTLS certificate and key (start-up and reloads) by result.",
                            {{"result", "ok"}})),
      tls_load_failed(r.counter("doorman_edge_tls_certificate_loads_total",
                                "Loads of the STARTTLS certificate and key (start-up and reloads) by result.",
                                {{"result", "failed"}})),
      tls_cert_expiry(r.gauge("doorman_edge_tls_certificate_expiry_timestamp_seconds",
                              "notAfter of the STARTTLS certificate in use, as Unix time.")),
      backend_tls_ok(r.counter("doorman_edge_backend_tls_total",
                               "STARTTLS towards back-ends: ok, or failed (not offered, refused, handshake).",
                               {{"result", "ok"}})),
      backend_tls_failed(r.counter("doorman_edge_backend_tls_total",
                                   "STARTTLS towards back-ends: ok, or failed (not offered, refused, handshake).",
                                   {{"result", "failed"}})),
      registry_(r) {
  for (const char* c :
       {"ehlo", "helo", "mail", "rcpt", "data", "rset", "noop", "quit", "vrfy", "help", "starttls", "other"})
    commands_[c] = &r.counter("doorman_edge_commands_total", "SMTP commands received.", {{"command", c}});
  const char* classes[] = {"2xx", "3xx", "4xx", "5xx"};
  for (size_t i = 0; i < 4; ++i)
    replies_[i] = &r.counter("doorman_edge_replies_total", "SMTP replies sent, by class.", {{"class", classes[i]}});
  for (size_t v = 0; v < kRcptVerdictLabels.size(); ++v)
    for (size_t s = 0; s < kRcptSourceLabels.size(); ++s)
      recipients_[v][s] = &r.counter("doorman_edge_recipients_total",
                                     "Recipients by final verdict and the source that decided.",
                                     {{"verdict", std::string(kRcptVerdictLabels[v])},
                                      {"source", std::string(kRcptSourceLabels[s])}});
  for (size_t o = 0; o < kRelayOutcomeLabels.size(); ++o)
    relays_[o] = &r.counter("doorman_edge_relay_transactions_total", "Relayed transactions by outcome.",
                            {{"outcome", std::string(kRelayOutcomeLabels[o])}});
  for (size_t e = 0; e < kSessionEndLabels.size(); ++e)
    ends_[e] = &r.counter("doorman_edge_sessions_total", "Ended SMTP sessions, by how they ended.",
                          {{"end", std::string(kSessionEndLabels[e])}});
}

void EdgeMetrics::tls_loaded(bool ok, double not_after) {
  (ok ? tls_load_ok : tls_load_failed).inc();
  if (ok && not_after > 0) tls_cert_expiry.set(not_after);
}

void EdgeMetrics::command(std::string_view verb) {
  if (auto* c = find(commands_, verb)) c->inc();
}

void EdgeMetrics::reply(int code) {
  int cls = code / 100;
  if (cls >= 2 && cls <= 5) replies_[static_cast<size_t>(cls - 2)]->inc();
}

void EdgeMetrics::recipient(RcptVerdict verdict, RcptSource source) {
  recipients_[static_cast<size_t>(verdict)][static_cast<size_t>(source)]->inc();
}

void EdgeMetrics::relay(RelayOutcome outcome) { relays_[static_cast<size_t>(outcome)]->inc(); }

void EdgeMetrics::session_ended(SessionEnd end) { ends_[static_cast<size_t>(end)]->inc(); }

}  // namespace doorman::edge
