// The DATA reader (RFC 5321 §4.1.1.4, §4.5.2): finds the end of a message and
// passes its content on exactly as received (still dot-stuffed, CRLF line
// ends), so that a back-end sees the same bytes and the same end.
//
// Smuggling defence (see shared/reference/smuggling.md): only CRLF "." CRLF
// ends the message. A bare LF, a bare CR or a NUL anywhere marks the message
// as bad; the reader then keeps consuming until the real CRLF.CRLF without
// passing anything on, so a "\n.\n" or "\r.\r" inside never ends the message
// and whatever follows it is swallowed with the bad message. The same holds
// when the size limit is passed.
//
// Sans-I/O, O(1) state, no allocation per byte: the content of each call is
// appended to the caller's string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace doorman::smtp {

class DataReader {
 public:
  enum class Problem { kNone, kBareLf, kBareCr, kNul, kTooBig };

  explicit DataReader(uint64_t max_size) : max_size_(max_size) {}

  // Consumes octets from `in` and appends message content to `out` (while the
  // message is good). Returns the number of octets consumed; stops right after
  // the terminating CRLF.CRLF (done() is then true).
  size_t feed(std::string_view in, std::string& out);

  bool done() const { return done_; }
  Problem problem() const { return problem_; }
  uint64_t size() const { return size_; }  // content octets seen, as on the wire

 private:
  enum class State { kLineStart, kMid, kCr, kDot, kDotCr };
  void fail(Problem p);

  uint64_t max_size_;
  uint64_t size_ = 0;
  State state_ = State::kLineStart;
  Problem problem_ = Problem::kNone;
  bool done_ = false;
};

}  // namespace doorman::smtp
