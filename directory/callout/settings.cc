#include "directory/callout/settings.h"

#include "common/smtp_client_connection.h"

namespace doorman::directory::callout {

bool parse_duration(const std::string& text, Millis* out) {
  size_t i = 0;
  int64_t n = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (n > 1000000000000LL) return false;
    n = n * 10 + (text[i] - '0');
    ++i;
  }
  if (i == 0) return false;
  std::string unit = text.substr(i);
  int64_t mul = 0;
  if (unit == "ms") mul = 1;
  else if (unit == "" || unit == "s") mul = 1000;
  else if (unit == "m") mul = 60 * 1000;
  else if (unit == "h") mul = 3600 * 1000;
  else if (unit == "d") mul = 24 * 3600 * 1000;
  else return false;
  *out = Millis(n * mul);
  return true;
}

std::string format_duration(Millis d) {
  int64_t ms = d.count();
  if (ms % (24 * 3600 * 1000) == 0 && ms != 0) return std::to_string(ms / (24 * 3600 * 1000)) + "d";
  if (ms % (3600 * 1000) == 0 && ms != 0) return std::to_string(ms / (3600 * 1000)) + "h";
  if (ms % (60 * 1000) == 0 && ms != 0) return std::to_string(ms / (60 * 1000)) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string make_tls_context(Settings* settings) {
  std::string error;
  settings->tls_context = make_client_context(settings->tls, &error);
  return error;
}

}  // namespace doorman::directory::callout
