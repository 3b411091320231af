// Settings of the callout engine, with their defaults and why.
//
// Lifetimes (cache, shared by every replica through Redis):
//   positive   expire 7 d, refresh after 24 h. Valid mailboxes are the hot
//              path; a day-old answer is refreshed in the background by the
//              first request after a day, so a deleted mailbox is noticed
//              within a day (and the back-end still rejects at delivery),
//              and a back-end outage of up to a week does not turn valid
//              recipients into deferrals. (Postfix 31 d / 7 d is longer than
//              we want for deleted mailboxes; Exim 24 h expires instead of
//              refreshing.)
//   negative   expire 2 h, refresh after 10 min. A mailbox created on the
//              back-end must not be blocked for long by a stale "unknown":
//              after 10 min the next request triggers a refresh (and
//              `doormanctl callout forget` clears it at once), while a
//              harvest attack that repeats addresses is still answered from
//              the cache. (Exim and SpamExperts: 2 h; Postfix 3 d / 3 h.)
//   catch-all  the random-address probe per domain: expire 24 h, refresh
//              after 1 h, so fixing the back-end is noticed within the hour.
// Waiting: wait budget 2 s (the edge's directory deadline is 3 s); after it
// the recipient gets 450 4.1.1 and the probe finishes in the background.
// Probing (per back-end route "host:port", all on the prober's one event
// loop thread): at most 4 concurrent sessions,
// 10 probes (RCPTs) per second with a burst of 10, at most 8 probes per
// session (Postfix's smtpd_soft_error_limit is 10: more unknown recipients
// in one session would be slowed down), sessions idle for 10 s are closed
// with QUIT. Connect timeout 5 s, command timeout 10 s, one probe at most
// 30 s (also the lifetime of the cross-replica lock).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/tls_client.h"

namespace boost::asio::ssl {
class context;
}

namespace doorman::directory::callout {

using Millis = std::chrono::milliseconds;

struct Settings {
  Millis positive_ttl{7LL * 24 * 3600 * 1000};
  Millis positive_refresh{24LL * 3600 * 1000};
  Millis negative_ttl{2LL * 3600 * 1000};
  Millis negative_refresh{10LL * 60 * 1000};
  Millis catch_all_ttl{24LL * 3600 * 1000};
  Millis catch_all_refresh{3600LL * 1000};

  Millis wait_budget{2000};
  Millis connect_timeout{5000};
  Millis command_timeout{10000};
  Millis probe_timeout{30000};  // whole probe incl. queueing; lock lifetime
  Millis poll_interval{100};    // waiting on another replica's probe
  Millis idle_timeout{10000};   // pooled session idle -> QUIT

  int concurrency = 4;          // sessions per back-end
  double rate = 10;             // RCPTs per second per back-end
  int burst = 10;
  int session_probes = 8;       // probes per session before QUIT
  std::string helo = "doorman.invalid";  // EHLO name of probe sessions
  // STARTTLS to back-ends (common/tls_client.h); context set unless mode none.
  TlsClientSettings tls;
  std::shared_ptr<boost::asio::ssl::context> tls_context;
};

// Builds settings.tls_context from settings.tls. Returns "" or an error.
std::string make_tls_context(Settings* settings);

// Parses "500ms", "2s", "10m", "24h", "7d" (a bare number is seconds).
// Returns false on anything else.
bool parse_duration(const std::string& text, Millis* out);
std::string format_duration(Millis d);

}  // namespace doorman::directory::callout
