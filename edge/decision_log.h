// The per-recipient decision log (issue #14): one info line per recipient,
// when its RCPT reply is known (in command order), in the spirit of Postfix's
// "NOQUEUE: reject: RCPT from ...":
//
//   ts=... level=info event=rcpt session=1a2b client=192.0.2.1 from=<a@b.example>
//     to=<x@example.com> verdict=rejected code=550 enhanced=5.1.1 reason=not_listed source=list
//
// Fields, in order: session, client, the sender and recipient (see the
// modes below), verdict (accepted | rejected | deferred: what the client
// got), code and enhanced (the reply), reason (edge/session/outcomes.h
// RcptReason: not_listed, callout_unknown, harvest_block, shadow, ...),
// source (the metric label: list, cache, probe, policy, error, limit,
// backend), and only when they apply: would_reject and would_code (a
// shadow-mode domain passed a refusal to the back-end), cache_age_seconds
// (source cache) and source_name (the named address source, e.g. an LDAP
// source, when the directory gives one).
//
// --log-recipients (docs/configuration.md has the privacy trade-off):
//   clear  from=<sender> to=<recipient>, as Postfix logs them (default);
//   hash   from_hash= to_hash= (common/address_hash.h: HMAC-SHA256 under the
//          site key, 16 hex digits; `doormanctl hash ADDRESS` with the same
//          key finds the lines) and to_domain=;
//   none   to_domain= only.
// The null sender is from=<> in every mode (it names nobody). A bare
// postmaster is "postmaster". Values are escaped by common/log.h, so an
// address cannot forge a line.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/address_hash.h"
#include "edge/session/session.h"

namespace doorman::edge {

enum class RecipientLogMode { kClear, kHash, kNone };
// "clear", "hash", "none"; false otherwise.
bool parse_recipient_log_mode(std::string_view text, RecipientLogMode* out);

struct DecisionContext {
  std::string_view session;
  std::string_view client;
};

class DecisionLog {
 public:
  DecisionLog() = default;
  // `key` is used by kHash only (at least kMinKeyBytes: config checks it).
  DecisionLog(RecipientLogMode mode, std::string_view key)
      : mode_(mode), hasher_(mode == RecipientLogMode::kHash ? std::make_shared<AddressHasher>(key) : nullptr) {}

  RecipientLogMode mode() const { return mode_; }
  // The line's key=value pairs, in order (tests; write() logs them).
  std::vector<std::pair<std::string, std::string>> fields(const RcptDecision& d, const DecisionContext& c) const;
  // log::info("rcpt") with fields().
  void write(const RcptDecision& d, const DecisionContext& c) const;

 private:
  RecipientLogMode mode_ = RecipientLogMode::kClear;
  std::shared_ptr<const AddressHasher> hasher_;  // kHash
};

}  // namespace doorman::edge
