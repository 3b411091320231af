// Parses SMTP replies as a client receives them (RFC 5321 §4.2): "250-a",
// "250 b" lines form one reply. Used by the relay and callout clients.
//
// Sees bytes from back-end servers (trusted more than clients, but still
// bounded): a reply line over 2048 octets or a reply over 64 lines is a
// protocol error, as is a malformed code. Sans-I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply.h"

namespace doorman::smtp {

struct ParsedReply {
  int code = 0;
  std::string enhanced;            // from the last line, if it has one
  std::vector<std::string> lines;  // text of each line, without code
  Reply reply() const;             // code, enhanced code, last line's text
};

class ReplyParser {
 public:
  // Consumes bytes; returns the number consumed. Stops after one complete
  // reply (then has_reply() is true) so the caller can act on it.
  size_t feed(std::string_view in);
  bool has_reply() const { return done_; }
  bool error() const { return error_; }
  // Takes the complete reply and resets for the next.
  ParsedReply take();

 private:
  bool parse_line(std::string_view line);
  std::string partial_;
  ParsedReply current_;
  bool done_ = false;
  bool error_ = false;
};

}  // namespace doorman::smtp
