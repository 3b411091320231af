#include "directory/callout/probe_session.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace doorman::directory::callout {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool split_route(const std::string& route, std::string* host, std::string* port) {
  size_t colon = route.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = route.substr(0, colon);
  *port = route.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  return !host->empty() && !port->empty();
}

}  // namespace

const char* error_name(ProbeSession::Error e) {
  switch (e) {
    case ProbeSession::Error::kNone: return "none";
    case ProbeSession::Error::kConnect: return "connect";
    case ProbeSession::Error::kTimeout: return "timeout";
    case ProbeSession::Error::kIo: return "io";
    case ProbeSession::Error::kProtocol: return "protocol";
    case ProbeSession::Error::kRefused: return "refused";
  }
  return "?";
}

ProbeSession::~ProbeSession() { close(); }

void ProbeSession::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
  parser_ = smtp::ReplyParser();
}

ProbeSession::Error ProbeSession::fail(Error e, std::string what) {
  error_ = std::move(what);
  close();
  return e;
}

ProbeSession::Error ProbeSession::open(const std::string& route, const std::string& helo,
                                       std::chrono::milliseconds connect_timeout,
                                       std::chrono::milliseconds command_timeout) {
  close();
  route_ = route;
  command_timeout_ = command_timeout;
  probes = 0;
  std::string host, port;
  if (!split_route(route, &host, &port)) return fail(Error::kConnect, "bad route");
  auto deadline = Clock::now() + connect_timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  // Host names resolve with the system resolver (blocking, on a probe thread).
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return fail(Error::kConnect, std::string("resolve: ") + gai_strerror(rc));
  std::string last = "no address";
  for (addrinfo* ai = res; ai != nullptr && fd_ < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = poll(&p, 1, remaining_ms(deadline));
      if (rc == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        if (err != 0) last = std::strerror(err);
      } else {
        last = "connect timed out";
        rc = -1;
      }
    } else if (rc != 0) {
      last = std::strerror(errno);
    }
    if (rc == 0) fd_ = fd;
    else ::close(fd);
  }
  freeaddrinfo(res);
  if (fd_ < 0) return fail(Error::kConnect, last);
  smtp::ParsedReply r;
  if (Error e = read_reply(&r, command_timeout); e != Error::kNone) return e;
  if (r.code / 100 != 2) return fail(Error::kRefused, "greeting " + std::to_string(r.code));
  if (Error e = command("EHLO " + helo, &r); e != Error::kNone) return e;
  if (r.code / 100 != 2) {
    if (Error e = command("HELO " + helo, &r); e != Error::kNone) return e;
    if (r.code / 100 != 2) return fail(Error::kRefused, "HELO " + std::to_string(r.code));
  }
  last_used = Clock::now();
  return Error::kNone;
}

ProbeSession::Error ProbeSession::read_reply(smtp::ParsedReply* reply, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!buf_.empty()) {
      size_t used = parser_.feed(buf_);
      buf_.erase(0, used);
      if (parser_.error()) return fail(Error::kProtocol, "malformed reply");
      if (parser_.has_reply()) {
        *reply = parser_.take();
        return Error::kNone;
      }
    }
    int left = remaining_ms(deadline);
    if (left == 0) return fail(Error::kTimeout, "reply timed out");
    pollfd p{fd_, POLLIN, 0};
    int rc = poll(&p, 1, left);
    if (rc == 0) return fail(Error::kTimeout, "reply timed out");
    if (rc < 0 && errno == EINTR) continue;
    char chunk[4096];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n == 0) return fail(Error::kIo, "connection closed by the back-end");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return fail(Error::kIo, std::strerror(errno));
    }
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

ProbeSession::Error ProbeSession::command(const std::string& line, smtp::ParsedReply* reply) {
  if (fd_ < 0) return Error::kIo;
  std::string out = line + "\r\n";
  auto deadline = Clock::now() + command_timeout_;
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = ::send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, remaining_ms(deadline)) <= 0) return fail(Error::kTimeout, "send timed out");
      continue;
    }
    return fail(Error::kIo, "send failed");
  }
  Error e = read_reply(reply, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
  if (e == Error::kNone) last_used = Clock::now();
  return e;
}

void ProbeSession::quit() {
  if (fd_ < 0) return;
  command_timeout_ = std::chrono::milliseconds(1000);
  smtp::ParsedReply r;
  (void)command("QUIT", &r);
  close();
}

}  // namespace doorman::directory::callout
