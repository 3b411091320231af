// Fuzz target for the batch-verdict path (issue #12): MAIL plus up to 150
// RCPTs, pipelined and fed in pieces chosen by the first byte; each further
// byte gives one recipient's fate: unknown (the directory's 550 5.1.1),
// valid, deferred (450), or accepted by the directory and refused by the
// back-end (550, accept-all's harvest signal), and whether the directory is
// slow (a new group starts when the input runs dry).
//
// Invariant: once the session reaches its hard error limit (20), no reply
// depends on a verdict. The session is run twice: with the given fates, and
// with every fate after the recipient that reached the limit changed. The
// two transcripts must be byte-identical; and each ends with the 421.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/session/session.h"

using namespace doorman::edge;
using doorman::smtp::Reply;

namespace {

enum Fate { kUnknown = 0, kValid = 1, kDeferred = 2, kBackendRefuses = 3 };

int index_of(const std::string& mailbox) { return std::atoi(mailbox.c_str() + 1); }  // "r<i>@example.com"

std::string run(const std::vector<Fate>& fates, size_t piece) {
  SessionConfig config;
  config.soft_error_limit = 10;
  config.hard_error_limit = 20;
  config.now = [] { return std::string("Thu, 1 Jan 2026 00:00:00 +0000"); };
  Session session(config, SessionInfo{"F1", "192.0.2.1"});
  std::string out;
  auto handle = [&](Actions a) {
    for (int guard = 0; guard < 10000; ++guard) {
      out += a.output;
      std::optional<RelayResult> relay;
      for (const auto& op : a.relay) {
        if (op.kind != RelayOp::Kind::kRcpts) continue;
        RelayResult r;
        for (const auto& m : op.rcpts)
          r.replies.push_back(fates[static_cast<size_t>(index_of(m))] == kBackendRefuses
                                  ? Reply{550, "5.1.1", "unknown"}
                                  : Reply{250, "2.1.5", "ok"});
        relay = r;
      }
      if (relay) {
        a = session.on_relay(*relay);
        continue;
      }
      if (!a.check) return;
      std::vector<Verdict> vs;
      for (const auto& r : a.check->recipients) {
        Verdict v;
        switch (fates[static_cast<size_t>(index_of(r.mailbox))]) {
          case kUnknown:
            v.decision = Verdict::Decision::kReject;
            v.reply = Reply{550, "5.1.1", "<" + r.mailbox + ">: Recipient address rejected: User unknown"};
            break;
          case kDeferred:
            v.decision = Verdict::Decision::kDefer;
            v.reply = Reply{450, "4.1.1", "<" + r.mailbox + ">: try again"};
            break;
          default:
            v.decision = Verdict::Decision::kAccept;
            v.reply = Reply{250, "2.1.5", "OK"};
            v.route = {"127.0.0.1:25"};
        }
        vs.push_back(v);
      }
      a = session.on_verdicts(std::move(vs));
    }
    std::abort();  // the session must settle
  };
  handle(session.start());
  std::string in = "EHLO c\r\nMAIL FROM:<s@remote.test>\r\n";
  for (size_t i = 0; i < fates.size(); ++i) in += "RCPT TO:<r" + std::to_string(i) + "@example.com>\r\n";
  for (size_t pos = 0; pos < in.size() && !session.closed(); pos += piece) handle(session.feed(std::string_view(in).substr(pos, piece)));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t piece = 1 + (data[0] % 64) * 7;
  std::vector<Fate> fates;
  for (size_t i = 1; i < size && fates.size() < 150; ++i) fates.push_back(static_cast<Fate>(data[i] % 4));
  const std::string a = run(fates, piece);
  const size_t limit = a.find("421 4.7.0");
  if (limit == std::string::npos) return 0;  // the limit was never reached
  // The reply just before the 421 is the one of the recipient that reached it.
  const size_t prev = a.rfind("\r\n", limit - 3);
  const size_t open = a.find("<r", prev == std::string::npos ? 0 : prev);
  if (open == std::string::npos || open > limit) std::abort();  // the limit reply names no recipient
  const size_t at = static_cast<size_t>(std::atoi(a.c_str() + open + 2));
  if (a.size() != limit + a.substr(limit).find("\r\n") + 2) std::abort();  // nothing after the 421
  std::vector<Fate> other = fates;
  for (size_t i = at + 1; i < other.size(); ++i) other[i] = static_cast<Fate>((other[i] + 1 + data[i % size] % 3) % 4);
  if (run(other, piece) != a) std::abort();
  return 0;
}
