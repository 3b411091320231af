#include "smtp/line.h"

namespace doorman::smtp {

LineResult next_line(std::string_view in, size_t max_len) {
  LineResult r;
  size_t lf = in.find('\n');
  if (lf == std::string_view::npos) {
    if (in.size() >= max_len) {
      r.status = LineStatus::kTooLong;
      // Keep a trailing CR: it may be the first half of the CRLF.
      r.consumed = in.back() == '\r' ? in.size() - 1 : in.size();
    }
    return r;
  }
  r.consumed = lf + 1;
  r.complete = true;
  if (lf + 1 > max_len) {
    r.status = LineStatus::kTooLong;
    return r;
  }
  if (lf == 0 || in[lf - 1] != '\r') {
    r.status = LineStatus::kBareLf;
    return r;
  }
  std::string_view line = in.substr(0, lf - 1);
  if (line.find('\r') != std::string_view::npos) {
    r.status = LineStatus::kBareCr;
    return r;
  }
  if (line.find('\0') != std::string_view::npos) {
    r.status = LineStatus::kNul;
    return r;
  }
  r.status = LineStatus::kLine;
  r.line = line;
  return r;
}

}  // namespace doorman::smtp
