// Fuzz target: RCPT/MAIL path and mailbox parsing. Invariant: whatever parses
// prints back (str()) to a mailbox that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "smtp/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  using namespace doorman::smtp;
  for (PathResult r : {parse_path(in), parse_mailbox(in)}) {
    if (!r.ok() || r.null_path) continue;
    PathResult again = parse_mailbox(r.mailbox.str());
    if (!again.ok() || !(again.mailbox == r.mailbox)) std::abort();
  }
  return 0;
}
