#include "smtp/reply_parser.h"

namespace doorman::smtp {
namespace {
constexpr size_t kMaxLine = 2048;
constexpr size_t kMaxLines = 64;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "x.y.z" at the start of text, RFC 3463 (class 2, 4 or 5).
size_t enhanced_length(std::string_view t) {
  if (t.size() < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.') return 0;
  size_t i = 2, digits = 0;
  while (i < t.size() && is_digit(t[i]) && digits < 3) ++i, ++digits;
  if (digits == 0 || i >= t.size() || t[i] != '.') return 0;
  ++i;
  digits = 0;
  while (i < t.size() && is_digit(t[i]) && digits < 3) ++i, ++digits;
  if (digits == 0) return 0;
  if (i < t.size() && t[i] != ' ') return 0;
  return i;
}
}  // namespace

Reply ParsedReply::reply() const {
  Reply r;
  r.code = code;
  r.enhanced = enhanced;
  if (!lines.empty()) {
    std::string_view t = lines.back();
    if (size_t n = enhanced_length(t); n > 0) {
      t.remove_prefix(n);
      if (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    }
    r.text.assign(t);
  }
  return r;
}

bool ReplyParser::parse_line(std::string_view line) {
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]) || line[0] < '2' ||
      line[0] > '5')
    return false;
  int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (!current_.lines.empty() && code != current_.code) return false;
  current_.code = code;
  char sep = line.size() > 3 ? line[3] : ' ';
  if (sep != ' ' && sep != '-') return false;
  std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view();
  current_.lines.emplace_back(text);
  if (current_.lines.size() > kMaxLines) return false;
  if (sep == ' ') {
    if (size_t n = enhanced_length(text); n > 0) current_.enhanced.assign(text.substr(0, n));
    done_ = true;
  }
  return true;
}

size_t ReplyParser::feed(std::string_view in) {
  size_t used = 0;
  while (used < in.size() && !done_ && !error_) {
    size_t lf = in.find('\n', used);
    if (lf == std::string_view::npos) {
      partial_.append(in.substr(used));
      used = in.size();
      if (partial_.size() > kMaxLine) error_ = true;
      break;
    }
    partial_.append(in.substr(used, lf - used));
    used = lf + 1;
    if (!partial_.empty() && partial_.back() == '\r') partial_.pop_back();
    if (partial_.size() > kMaxLine || !parse_line(partial_)) error_ = true;
    partial_.clear();
  }
  return used;
}

ParsedReply ReplyParser::take() {
  ParsedReply r = std::move(current_);
  current_ = ParsedReply{};
  done_ = false;
  return r;
}

}  // namespace doorman::smtp
