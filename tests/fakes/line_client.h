// Test helper: a tiny blocking SMTP client for talking to fakes and test
// back-ends on loopback. Raw bytes out, whole replies in; every read has a
// timeout so a test never hangs on a silent server.
#pragma once

#include <string>

namespace doorman::test {

class LineClient {
 public:
  LineClient() = default;
  ~LineClient();
  LineClient(const LineClient&) = delete;
  LineClient& operator=(const LineClient&) = delete;

  bool connect(int port, int timeout_ms = 5000);
  void close();
  bool send(const std::string& bytes);
  // One complete reply, lines joined with "\n" (no CRLF); "" on timeout/EOF.
  std::string reply(int timeout_ms = 5000);
  // Sends line + CRLF and reads the reply.
  std::string command(const std::string& line, int timeout_ms = 5000);
  // True when the peer closed the connection within the timeout.
  bool closed_by_peer(int timeout_ms = 5000);

 private:
  bool read_line(std::string* line, int timeout_ms);
  int fd_ = -1;
  std::string buf_;
};

}  // namespace doorman::test
