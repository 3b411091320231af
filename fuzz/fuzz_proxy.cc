// Fuzz target: PROXY protocol headers; incremental parsing must agree with
// parsing the whole input, and never claim more bytes than it was given.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "edge/proxy/proxy_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace doorman::edge::proxy;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Result whole = parse(in, Version::kAny);
  if (whole.status == Result::Status::kDone && whole.consumed > in.size()) std::abort();
  for (size_t n = 0; n <= in.size(); ++n) {
    Result r = parse(in.substr(0, n), Version::kAny);
    if (r.status == Result::Status::kNeedMore) continue;
    if (r.status != whole.status || r.consumed != whole.consumed || r.source_ip != whole.source_ip) std::abort();
    break;
  }
  return 0;
}
