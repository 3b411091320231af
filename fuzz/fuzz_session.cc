// Fuzz target: a whole SMTP session — the state machine with a fake
// directory and a fake back-end, fed the input in pieces chosen by the first
// byte. STARTTLS is offered; the fake handshake succeeds unless bit 7 of the
// first byte says it fails. Invariants: every output line is a reply line
// ("ddd " or "ddd-"), the bytes held (input and message data not yet handed
// to the relay, also after the back-end was lost) stay bounded, a closed session stays
// closed, and nothing buffered before a handshake survives it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edge/session/session.h"

using namespace doorman::edge;
using doorman::smtp::Reply;

namespace {
void check_output(const std::string& out) {
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find("\r\n", start);
    if (end == std::string::npos) std::abort();
    std::string_view line(out.data() + start, end - start);
    if (line.size() < 4 || line[0] < '2' || line[0] > '5' || (line[3] != ' ' && line[3] != '-')) std::abort();
    start = end + 2;
  }
}

struct Harness {
  SessionConfig config;
  Session session{config, SessionInfo{"F1", "192.0.2.1"}};
  uint8_t seed = 0;

  void handle(Actions a) {
    for (int guard = 0; guard < 10000; ++guard) {
      check_output(a.output);
      std::optional<RelayResult> relay;
      for (const auto& op : a.relay) {
        if (op.kind == RelayOp::Kind::kAbort || op.kind == RelayOp::Kind::kRelease) continue;
        RelayResult r;
        if ((seed & 7) == 7) r.status = RelayResult::Status::kLost;
        if (op.kind == RelayOp::Kind::kRcpts)
          for (size_t i = 0; i < op.rcpts.size(); ++i) r.replies.push_back(Reply{(seed & 8) ? 550 : 250, "", "x"});
        if (op.kind == RelayOp::Kind::kData) r.replies.push_back(Reply{354, "", "go"});
        if (op.kind == RelayOp::Kind::kEnd) r.replies.push_back(Reply{(seed & 16) ? 451 : 250, "", "x"});
        relay = r;
      }
      if (relay) {
        a = session.on_relay(*relay);
        continue;
      }
      if (a.start_tls) {
        // Nothing may be in flight across STARTTLS: no check, no back-end
        // step awaiting a result (an RSET'd or abandoned back-end is fine).
        if (a.check) std::abort();
        for (const auto& op : a.relay)
          if (op.kind != RelayOp::Kind::kAbort && op.kind != RelayOp::Kind::kRelease) std::abort();
        a = (seed & 128) ? session.on_tls_failed() : session.on_tls("TLSv1.3 with cipher X (256/256 bits)");
        if (session.buffered() != 0) std::abort();
        continue;
      }
      if (!a.check) return;
      if (seed & 32) {
        a = session.on_check_failed();
        continue;
      }
      std::vector<Verdict> vs;
      for (const auto& r : a.check->recipients) {
        Verdict v;
        bool ok = r.mailbox.size() % 2 == 0;
        v.decision = ok ? Verdict::Decision::kAccept : Verdict::Decision::kReject;
        v.reply = ok ? Reply{250, "2.1.5", "OK"} : Reply{550, "5.1.1", "unknown"};
        if (ok) v.route = {"127.0.0.1:25"};
        vs.push_back(v);
      }
      a = session.on_verdicts(std::move(vs));
    }
    std::abort();  // the session must settle
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Harness h;
  h.seed = data[0];
  h.config.soft_error_limit = 1000;
  h.config.hard_error_limit = 2000;
  h.config.max_message_size = 4096;
  h.config.now = [] { return std::string("Thu, 1 Jan 2026 00:00:00 +0000"); };
  h.config.starttls = true;
  h.handle(h.session.start());
  size_t piece = 1 + data[0] % 23;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  for (size_t pos = 0; pos < in.size(); pos += piece) {
    bool was_closed = h.session.closed();
    Actions a = h.session.feed(in.substr(pos, piece));
    if (was_closed && (!a.output.empty() || a.check || !a.relay.empty())) std::abort();
    h.handle(std::move(a));
    if (h.session.held_bytes() > 512 + piece + 64 && !h.session.waiting()) std::abort();
  }
  if (data[0] & 64) h.handle(h.session.on_timeout());
  return 0;
}
