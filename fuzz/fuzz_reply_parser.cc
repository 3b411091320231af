// Fuzz target: back-end reply parsing, whole and one byte at a time must
// agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "smtp/reply_parser.h"

namespace {
std::vector<int> codes(std::string_view in, size_t piece, bool* error) {
  doorman::smtp::ReplyParser p;
  std::vector<int> out;
  size_t pos = 0;
  while (pos < in.size() && !p.error()) {
    size_t used = p.feed(in.substr(pos, std::min(piece, in.size() - pos)));
    pos += used;
    if (p.has_reply()) out.push_back(p.take().reply().code);
    else if (used == 0) break;
  }
  *error = p.error();
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  bool e1 = false, e2 = false;
  std::vector<int> a = codes(in, in.size() + 1, &e1);
  std::vector<int> b = codes(in, 1, &e2);
  if (e1 != e2 || (!e1 && a != b)) std::abort();
  for (int c : a)
    if (c < 200 || c > 599) std::abort();
  return 0;
}
