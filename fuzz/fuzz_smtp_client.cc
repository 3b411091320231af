// Fuzz target: the SMTP client (smtp/client.h) against arbitrary server
// bytes. The first byte picks the TLS policy and whether the handshake
// succeeds; the rest is what the server sends, whole and one byte at a
// time (the client reacts to every event before the next bytes, as it does
// on a socket). A kReplies event must carry exactly the replies asked for,
// and nothing may crash or hang. (The two splits may end differently: bytes
// that arrive before the command they would answer are refused as
// unsolicited, by design.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/client.h"

namespace {

using doorman::smtp::Client;

std::string run(std::string_view server, doorman::smtp::ClientTls tls, bool handshake_ok, size_t piece) {
  Client c("fuzz.test", tls);
  c.start();
  std::string trace;
  size_t expected = 0;
  int step = 0;
  auto react = [&] {
    for (;;) {
      trace += c.take_output();
      Client::Event e = c.take_event();
      trace += "|" + std::to_string(static_cast<int>(e.kind));
      switch (e.kind) {
        case Client::Event::Kind::kNone: return;
        case Client::Event::Kind::kStartTls: c.tls_done(handshake_ok); break;
        case Client::Event::Kind::kReplies:
          if (e.replies.size() != expected) std::abort();
          [[fallthrough]];
        case Client::Event::Kind::kOpen:
          if (++step % 2) {
            expected = 3;
            c.transact({"MAIL FROM:<>", "RCPT TO:<a@b.test>", "RCPT TO:<c@b.test>"});
          } else {
            expected = 1;
            c.send("data\r\n.\r\n", 1);
          }
          break;
        case Client::Event::Kind::kFailed: return;
      }
    }
  };
  for (size_t pos = 0; pos < server.size() && !c.failed(); pos += piece) {
    c.feed(server.substr(pos, piece));
    react();
  }
  return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto tls = static_cast<doorman::smtp::ClientTls>(data[0] % 3);
  bool handshake_ok = data[0] & 4;
  std::string_view server(reinterpret_cast<const char*>(data) + 1, size - 1);
  (void)run(server, tls, handshake_ok, server.size() + 1);
  (void)run(server, tls, handshake_ok, 1);
  return 0;
}
