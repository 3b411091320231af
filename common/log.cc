#include "common/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace doorman::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> g_json{false};

void append_json_string(std::string& out, std::string_view v) {
  out.push_back('"');
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\u%04x", u);
      out.append(hex);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

const char* level_name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}

void append_value(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (char c : v)
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) quote = true;
  if (!quote) {
    out.append(v);
    return;
  }
  out.push_back('"');
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out.append(hex);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}
}  // namespace

void set_level(Level l) { g_level.store(static_cast<int>(l)); }
void set_format(Format f) { g_json.store(f == Format::kJson); }

bool parse_format(std::string_view t, Format* out) {
  if (t == "kv") *out = Format::kKeyValue;
  else if (t == "json") *out = Format::kJson;
  else return false;
  return true;
}
Level level() { return static_cast<Level>(g_level.load()); }
bool enabled(Level l) { return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view t, Level* out) {
  if (t == "debug") *out = Level::kDebug;
  else if (t == "info") *out = Level::kInfo;
  else if (t == "warn") *out = Level::kWarn;
  else if (t == "error") *out = Level::kError;
  else return false;
  return true;
}

Line::Line(Level l, std::string_view event) : on_(enabled(l)) {
  if (!on_) return;
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  buf_.reserve(160);
  if (g_json.load(std::memory_order_relaxed)) {
    buf_ += "{\"ts\":\"";
    buf_ += ts;
    buf_ += "\",\"level\":\"";
    buf_ += level_name(l);
    buf_ += "\",\"event\":";
    append_json_string(buf_, event);
    return;
  }
  buf_ += "ts=";
  buf_ += ts;
  buf_ += " level=";
  buf_ += level_name(l);
  buf_ += " event=";
  append_value(buf_, event);
}

Line::~Line() {
  if (!on_) return;
  if (g_json.load(std::memory_order_relaxed)) buf_.push_back('}');
  buf_.push_back('\n');
  // One write(2) per line keeps lines from different threads whole.
  ssize_t rc = ::write(2, buf_.data(), buf_.size());
  (void)rc;
}

Line& Line::kv(std::string_view key, std::string_view value) {
  if (!on_) return *this;
  if (g_json.load(std::memory_order_relaxed)) {
    buf_.push_back(',');
    append_json_string(buf_, key);
    buf_.push_back(':');
    append_json_string(buf_, value);
    return *this;
  }
  buf_.push_back(' ');
  buf_.append(key);
  buf_.push_back('=');
  append_value(buf_, value);
  return *this;
}

Line& Line::number(std::string_view key, const std::string& digits) {
  if (!on_) return *this;
  if (!g_json.load(std::memory_order_relaxed)) return kv(key, std::string_view(digits));
  buf_.push_back(',');
  append_json_string(buf_, key);
  buf_.push_back(':');
  buf_ += digits;
  return *this;
}

Line& Line::kv(std::string_view key, int64_t value) { return on_ ? number(key, std::to_string(value)) : *this; }
Line& Line::kv(std::string_view key, uint64_t value) { return on_ ? number(key, std::to_string(value)) : *this; }
Line& Line::kv(std::string_view key, double value) {
  if (!on_) return *this;
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", value);
  return number(key, b);
}

}  // namespace doorman::log
