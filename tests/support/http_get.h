// A blocking HTTP/1.0 GET against 127.0.0.1 for tests (metrics, health).
#pragma once

#include <string>

namespace doorman::test {

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string body;
};

HttpResult http_get(int port, const std::string& path, int timeout_ms = 5000);

// Percent-encodes everything but unreserved characters (for query strings).
std::string url_encode(const std::string& s);

// The value of one sample line "name{labels} value" in a Prometheus text
// exposition, matched exactly on "name{labels}" (or "name" without labels);
// -1 when absent.
double metric_value(const std::string& exposition, const std::string& series);

}  // namespace doorman::test
