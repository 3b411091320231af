#include "smtp/data_reader.h"

namespace doorman::smtp {

void DataReader::fail(Problem p) {
  if (problem_ == Problem::kNone) problem_ = p;
}

size_t DataReader::feed(std::string_view in, std::string& out) {
  const size_t start_len = out.size();
  // Content is copied in runs, not byte by byte: [run, i) is the current run
  // of octets to pass on verbatim. A '.' at a line start (and a CR after it)
  // is held back in the state, not in the run, until we know it is not the
  // end of the message.
  size_t run = 0;
  size_t i = 0;
  auto flush = [&](size_t end) {
    if (problem_ == Problem::kNone && end > run) out.append(in.data() + run, end - run);
    run = end;
  };
  auto emit_held = [&](std::string_view held) {
    if (problem_ == Problem::kNone) out.append(held);
  };
  for (; i < in.size() && !done_; ++i) {
    const char c = in[i];
    switch (state_) {
      case State::kLineStart:
        if (c == '.') {
          flush(i);
          run = i + 1;
          state_ = State::kDot;
          break;
        }
        [[fallthrough]];
      case State::kMid:
        if (c == '\r') {
          state_ = State::kCr;
        } else {
          if (c == '\n') fail(Problem::kBareLf);
          if (c == '\0') fail(Problem::kNul);
          state_ = State::kMid;
        }
        break;
      case State::kCr:
        if (c == '\n') {
          state_ = State::kLineStart;
        } else {
          fail(Problem::kBareCr);
          if (c == '\0') fail(Problem::kNul);
          if (c != '\r') state_ = State::kMid;
        }
        break;
      case State::kDot:
        if (c == '\r') {
          run = i + 1;  // hold ".\r"
          state_ = State::kDotCr;
          break;
        }
        emit_held(".");
        run = i;
        if (c == '\n') fail(Problem::kBareLf);
        if (c == '\0') fail(Problem::kNul);
        state_ = State::kMid;
        break;
      case State::kDotCr:
        if (c == '\n') {
          done_ = true;  // CRLF "." CRLF
          run = i + 1;
          break;
        }
        emit_held(".\r");
        run = i;
        fail(Problem::kBareCr);
        if (c == '\0') fail(Problem::kNul);
        state_ = c == '\r' ? State::kCr : State::kMid;
        break;
    }
  }
  if (!done_) flush(i);
  size_ += out.size() - start_len;
  if (problem_ == Problem::kNone && size_ > max_size_) problem_ = Problem::kTooBig;
  if (problem_ != Problem::kNone) out.resize(start_len);
  return i;
}

}  // namespace doorman::smtp
