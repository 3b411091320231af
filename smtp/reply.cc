#include "smtp/reply.h"

namespace doorman::smtp {
namespace {
void append_clean(std::string& out, std::string_view text) {
  for (char c : text) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
}
}  // namespace

void Reply::append_wire(std::string& out) const {
  out += std::to_string(code);
  out.push_back(' ');
  if (!enhanced.empty()) {
    out += enhanced;
    out.push_back(' ');
  }
  append_clean(out, text);
  out += "\r\n";
}

std::string Reply::wire() const {
  std::string out;
  append_wire(out);
  return out;
}

std::string multiline(int code, const std::vector<std::string>& lines) {
  std::string out;
  std::string c = std::to_string(code);
  for (size_t i = 0; i < lines.size(); ++i) {
    out += c;
    out.push_back(i + 1 == lines.size() ? ' ' : '-');
    append_clean(out, lines[i]);
    out += "\r\n";
  }
  return out;
}

}  // namespace doorman::smtp
