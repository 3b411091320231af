#include "tests/support/smtp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

namespace doorman::test {

SmtpClient::~SmtpClient() { close(); }

bool SmtpClient::connect(int port, int timeout_ms) {
  close();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
    ::close(fd_);
    fd_ = -1;
    usleep(50 * 1000);
  }
  return false;
}

void SmtpClient::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
}

bool SmtpClient::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool SmtpClient::read_line(std::string* line, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    size_t lf = buf_.find("\r\n");
    if (lf != std::string::npos) {
      *line = buf_.substr(0, lf);
      buf_.erase(0, lf + 2);
      return true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char tmp[4096];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

std::string SmtpClient::reply(int timeout_ms) {
  std::string out, line;
  while (read_line(&line, timeout_ms)) {
    if (!out.empty()) out += "\n";
    out += line;
    if (line.size() < 4 || line[3] != '-') return out;
  }
  return "";
}

std::string SmtpClient::command(const std::string& line, int timeout_ms) {
  if (!send(line + "\r\n")) return "";
  return reply(timeout_ms);
}

bool SmtpClient::closed_by_peer(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char tmp[4096];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return true;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }
  return false;
}

std::string rcpt_in_new_session(int port, const std::string& to, const std::string& from) {
  SmtpClient c;
  if (!c.connect(port)) return "no connection";
  c.reply();
  c.command("EHLO client.test");
  c.command("MAIL FROM:<" + from + ">");
  return c.command("RCPT TO:<" + to + ">");
}

}  // namespace doorman::test
