// A minimal blocking SMTP client for tests: raw bytes out, reply
// lines in. Talks only to loopback. Every read has a timeout so a test can
// never hang on a silent server.
#pragma once

#include <string>
#include <vector>

namespace doorman::test {

class SmtpClient {
 public:
  SmtpClient() = default;
  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  // Connects to 127.0.0.1:port. Returns false on failure.
  bool connect(int port, int timeout_ms = 5000);
  void close();
  // Sends raw bytes (no CRLF added).
  bool send(const std::string& bytes);
  // Reads one complete reply (multi-line replies joined with "\n"); "" on
  // timeout or EOF.
  std::string reply(int timeout_ms = 5000);
  // Sends `line` + CRLF and returns the reply.
  std::string command(const std::string& line, int timeout_ms = 5000);
  // True when the server closed the connection (EOF) within the timeout.
  bool closed_by_peer(int timeout_ms = 5000);

 private:
  bool read_line(std::string* line, int timeout_ms);
  int fd_ = -1;
  std::string buf_;
};

// A fresh session on 127.0.0.1:port: greeting, EHLO client.test, MAIL FROM
// `from`, then RCPT TO `to`; returns the RCPT reply ("no connection" when the
// connection fails). The session is closed afterwards.
std::string rcpt_in_new_session(int port, const std::string& to, const std::string& from = "s@remote.test");

}  // namespace doorman::test
