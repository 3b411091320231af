// The edge's typed outcomes: what became of a recipient, a relayed
// transaction and a session. One table per enum gives its metric label and
// log word (the same string), so the session and the connection never derive
// an outcome from reply text, and a label outside the fixed sets cannot
// appear (docs/metrics.md lists them).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace doorman::edge {

enum class RcptVerdict : uint8_t { kAccepted, kRejected, kDeferred };
inline constexpr std::array<std::string_view, 3> kRcptVerdictLabels = {"accepted", "rejected", "deferred"};

// Who decided a recipient: the directory's sources, the back-end, or our own
// trouble (kError).
enum class RcptSource : uint8_t { kList, kCache, kProbe, kPolicy, kError, kBackend, kLimit };
inline constexpr std::array<std::string_view, 7> kRcptSourceLabels = {"list",  "cache",   "probe", "policy",
                                                                      "error", "backend", "limit"};

// Why a recipient got its reply, for the decision log (issue #14, one
// `rcpt` line per recipient; docs/configuration.md): the directory's reasons
// (recipient.proto Reason), the back-end's answer to a relayed recipient, and
// the edge's own. A log word only, never a metric label (the verdict and
// source labels stay small).
enum class RcptReason : uint8_t {
  kUnspecified,        // an older directory sent no reason
  kListed,             // in the domain's list
  kNotListed,          // not in it
  kCalloutValid,       // the back-end accepted the address at a callout
  kCalloutUnknown,     // ... refused it with a 5xx ("callout 5xx")
  kCalloutPending,     // no callout answer within the wait budget
  kCalloutTempfail,    // the callout got a 4xx
  kCatchAll,           // a catch-all back-end; the domain's policy decided
  kAcceptAll,          // accept-all domain
  kPostmaster,         // postmaster@ a guarded domain
  kRelayDenied,        // domain not guarded
  kRouting,            // routing local part
  kSyntax,             // not a mailbox
  kHarvestBlock,       // the harvest defence defers this client
  kLookupError,        // the directory's own trouble, or no answer from it
  kNotConfigured,      // the directory's store is not configured
  kShadow,             // a shadow-mode domain passed a would-be refusal and the back-end accepted it
  kBackendRefused,     // the back-end refused the recipient (5xx)
  kBackendDeferred,    // ... deferred it (4xx)
  kBackendUnreachable, // no back-end of the route answered
  kBackendBusy,        // every back-end of the route is at its connection limit
  kBackendLost,        // the back-end connection was lost
  kOtherRoute,         // another back-end than the transaction's: 452, new transaction
  kTooManyRecipients,  // the transaction's recipient limit
  kTooManyErrors,      // the session reached the hard error limit first
};
inline constexpr std::array<std::string_view, 25> kRcptReasonLabels = {
    "unspecified",      "listed",          "not_listed",       "callout_valid",   "callout_unknown",
    "callout_pending",  "callout_tempfail", "catch_all",       "accept_all",      "postmaster",
    "relay_denied",     "routing",         "syntax",           "harvest_block",   "lookup_error",
    "not_configured",   "shadow",          "backend_refused",  "backend_deferred", "backend_unreachable",
    "backend_busy",     "backend_lost",    "other_route",      "too_many_recipients", "too_many_errors"};

enum class RelayOutcome : uint8_t { kDelivered, kRejected, kDeferred, kLost, kAborted };
inline constexpr std::array<std::string_view, 5> kRelayOutcomeLabels = {"delivered", "rejected", "deferred", "lost",
                                                                        "aborted"};

// How a session ended (doorman_edge_sessions_total{end}, session_end log).
enum class SessionEnd : uint8_t {
  kClientQuit,          // QUIT (221)
  kClientDisconnected,  // EOF from the client
  kTimeout,             // idle timeout (421 4.4.2) or a write that never completed
  kTooManyErrors,       // hard error limit (421 4.7.0)
  kSyncError,           // data before 354 (554 5.5.0)
  kShutdown,            // graceful stop (421 4.3.2)
  kShutdownForced,      // grace period over
  kTooManySessions,     // max-sessions or max-sessions-per-ip (421 4.7.0)
  kReadError,
  kWriteError,
  kServerClosed,        // closed by us for another reason
  kProxyInvalid,        // PROXY header missing, invalid, late, or from an untrusted peer
  kPregreet,            // talked before the greeting (554 5.5.0)
  kTlsFailed,           // STARTTLS handshake failed or timed out
};
inline constexpr std::array<std::string_view, 14> kSessionEndLabels = {
    "client_quit", "client_disconnected", "timeout",        "too_many_errors", "sync_error",
    "shutdown",    "shutdown_forced",     "too_many_sessions", "read_error",   "write_error",
    "server_closed", "proxy_invalid",     "pregreet",       "tls_failed"};

inline std::string_view label(RcptVerdict v) { return kRcptVerdictLabels[static_cast<size_t>(v)]; }
inline std::string_view label(RcptSource s) { return kRcptSourceLabels[static_cast<size_t>(s)]; }
inline std::string_view label(RcptReason r) { return kRcptReasonLabels[static_cast<size_t>(r)]; }
inline std::string_view label(RelayOutcome o) { return kRelayOutcomeLabels[static_cast<size_t>(o)]; }
inline std::string_view label(SessionEnd e) { return kSessionEndLabels[static_cast<size_t>(e)]; }

}  // namespace doorman::edge
