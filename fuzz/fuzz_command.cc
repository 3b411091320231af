// Fuzz target: command line framing and parsing (line, verb, MAIL/RCPT
// arguments with ESMTP parameters).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/command.h"
#include "smtp/line.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doorman::smtp;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    LineResult r = next_line(in, 512);
    if (r.status == LineStatus::kNeedMore) break;
    if (r.consumed == 0 || r.consumed > in.size()) std::abort();
    if (r.status == LineStatus::kLine) {
      if (r.line.size() > 510) std::abort();
      Command c = parse_command(r.line);
      if (c.verb == Verb::kMail) (void)parse_path_arg(c.arg, "FROM:");
      if (c.verb == Verb::kRcpt) (void)parse_path_arg(c.arg, "TO:");
    }
    in.remove_prefix(r.consumed);
  }
  return 0;
}
