// SMTP replies (RFC 5321 §4.2, enhanced status codes RFC 3463/2034).
// A Reply is all a client ever sees of a decision: code, enhanced code, text.
// Texts are generic; internal reasons go to logs, never into a Reply.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace doorman::smtp {

struct Reply {
  int code = 0;
  std::string enhanced;  // "5.1.1"; empty for replies without one (220, 221 greeting lines)
  std::string text;

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }

  // "550 5.1.1 text\r\n". CR and LF in the text are replaced by spaces so a
  // reply can never inject a second line.
  std::string wire() const;
  void append_wire(std::string& out) const;
};

// A multi-line reply: "250-first\r\n250-second\r\n250 last\r\n".
std::string multiline(int code, const std::vector<std::string>& lines);

}  // namespace doorman::smtp
