// One line per event on stderr: "ts=... level=info event=name key=value ..."
// (values with spaces, quotes or '=' are quoted), or one JSON object per line
// with set_format(Format::kJson). Thread-safe: each line is one write.
// Addresses belong at debug level only.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace doorman::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class Format { kKeyValue, kJson };

void set_format(Format format);
// Parses "kv" or "json"; returns false otherwise.
bool parse_format(std::string_view text, Format* out);

void set_level(Level level);
Level level();
// Parses "debug", "info", "warn", "error"; returns false otherwise.
bool parse_level(std::string_view text, Level* out);
bool enabled(Level level);

// Builds one line and writes it when destroyed.
class Line {
 public:
  Line(Level level, std::string_view event);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& kv(std::string_view key, std::string_view value);
  Line& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
  Line& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  Line& kv(std::string_view key, int64_t value);
  Line& number(std::string_view key, const std::string& digits);
  Line& kv(std::string_view key, uint64_t value);
  Line& kv(std::string_view key, int value) { return kv(key, static_cast<int64_t>(value)); }
  Line& kv(std::string_view key, unsigned value) { return kv(key, static_cast<uint64_t>(value)); }
  Line& kv(std::string_view key, double value);
  Line& kv(std::string_view key, bool value) { return kv(key, std::string_view(value ? "true" : "false")); }

 private:
  bool on_;
  std::string buf_;
};

inline Line debug(std::string_view e) { return Line(Level::kDebug, e); }
inline Line info(std::string_view e) { return Line(Level::kInfo, e); }
inline Line warn(std::string_view e) { return Line(Level::kWarn, e); }
inline Line error(std::string_view e) { return Line(Level::kError, e); }

}  // namespace doorman::log
