// Fuzz target: the DATA reader. The first byte chooses how the rest is split
// into reads. Invariants: the same end and the same content whatever the
// splitting; a good message's content plus ".\r\n" is exactly what was
// consumed, so nothing after the end can leak into it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "smtp/data_reader.h"

namespace {
struct Outcome {
  std::string content;
  size_t consumed = 0;
  bool done = false;
  doorman::smtp::DataReader::Problem problem{};
};

Outcome run(std::string_view in, size_t piece) {
  doorman::smtp::DataReader r(1 << 16);
  Outcome o;
  while (o.consumed < in.size() && !r.done()) {
    size_t n = std::min(piece, in.size() - o.consumed);
    o.consumed += r.feed(in.substr(o.consumed, n), o.content);
  }
  o.done = r.done();
  o.problem = r.problem();
  return o;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t piece = 1 + data[0] % 17;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  Outcome whole = run(in, in.size() + 1);
  Outcome split = run(in, piece);
  if (whole.done != split.done || whole.consumed != split.consumed || whole.problem != split.problem) std::abort();
  using P = doorman::smtp::DataReader::Problem;
  if (whole.done && whole.problem == P::kNone) {
    if (whole.content != split.content) std::abort();
    if (whole.content + ".\r\n" != in.substr(0, whole.consumed)) std::abort();
  }
  return 0;
}
