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
    case ProbeSession::Error::kTls: return "tls";
  }
  return "?";
}

ProbeSession::~ProbeSession() { close(); }

void ProbeSession::close() {
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
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
                                       std::chrono::milliseconds command_timeout, const TlsClientSettings* tls,
                                       SSL_CTX* tls_context) {
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
  if (tls && tls_context && tls->mode != TlsClientSettings::Mode::kNone) {
    bool offered = false;
    for (size_t i = 1; i < r.lines.size(); ++i) {
      std::string word = r.lines[i].substr(0, r.lines[i].find(' '));
      for (char& ch : word) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
      if (word == "STARTTLS") offered = true;
    }
    if (offered) {
      if (Error e = start_tls(*tls, tls_context, host, helo); e != Error::kNone) return e;
    } else if (tls->mode == TlsClientSettings::Mode::kRequired) {
      return fail(Error::kTls, "STARTTLS not offered");
    }
  }
  last_used = Clock::now();
  return Error::kNone;
}

ProbeSession::Error ProbeSession::start_tls(const TlsClientSettings& tls, SSL_CTX* ctx, const std::string& host,
                                            const std::string& helo) {
  smtp::ParsedReply r;
  if (Error e = command("STARTTLS", &r); e != Error::kNone) return e;
  if (r.code != 220) {
    if (tls.mode == TlsClientSettings::Mode::kRequired) return fail(Error::kTls, "STARTTLS " + std::to_string(r.code));
    return Error::kNone;  // opportunistic: stay in plaintext
  }
  // Plaintext after the 220 must never be read as a reply inside TLS.
  if (!buf_.empty()) return fail(Error::kProtocol, "data after 220 to STARTTLS");
  ssl_ = SSL_new(ctx);
  if (!ssl_ || SSL_set_fd(ssl_, fd_) != 1) return fail(Error::kTls, "SSL_new failed");
  prepare_client_ssl(ssl_, tls, host);
  auto deadline = Clock::now() + command_timeout_;
  for (;;) {
    int rc = SSL_connect(ssl_);
    if (rc == 1) break;
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (!wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
        return fail(Error::kTimeout, "TLS handshake timed out");
      continue;
    }
    return fail(Error::kTls, tls_error_text(ssl_));
  }
  // RFC 3207: the plaintext EHLO counts for nothing; say it again.
  if (Error e = command("EHLO " + helo, &r); e != Error::kNone) return e;
  if (r.code / 100 != 2) return fail(Error::kRefused, "EHLO after STARTTLS " + std::to_string(r.code));
  return Error::kNone;
}

bool ProbeSession::wait(short events, Clock::time_point deadline) {
  for (;;) {
    int left = remaining_ms(deadline);
    if (left == 0) return false;
    pollfd p{fd_, events, 0};
    int rc = poll(&p, 1, left);
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;  // let the read or write report the error
  }
}

long ProbeSession::read_some(char* buf, size_t cap, Clock::time_point deadline) {
  for (;;) {
    if (ssl_) {
      int n = SSL_read(ssl_, buf, static_cast<int>(cap));
      if (n > 0) return n;
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_ZERO_RETURN) return 0;
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        error_ = tls_error_text(ssl_);
        return -1;
      }
      if (!wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline)) return -2;
      continue;
    }
    if (!wait(POLLIN, deadline)) return -2;
    ssize_t n = ::recv(fd_, buf, cap, 0);
    if (n >= 0) return n;
    if (errno == EAGAIN || errno == EINTR) continue;
    error_ = std::strerror(errno);
    return -1;
  }
}

ProbeSession::Error ProbeSession::write_all(const std::string& out, Clock::time_point deadline) {
  size_t off = 0;
  while (off < out.size()) {
    if (ssl_) {
      int n = SSL_write(ssl_, out.data() + off, static_cast<int>(out.size() - off));
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      int err = SSL_get_error(ssl_, n);
      if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return fail(Error::kIo, tls_error_text(ssl_));
      if (!wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
        return fail(Error::kTimeout, "send timed out");
      continue;
    }
    ssize_t n = ::send(fd_, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLOUT, deadline)) return fail(Error::kTimeout, "send timed out");
      continue;
    }
    return fail(Error::kIo, "send failed");
  }
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
    char chunk[4096];
    long n = read_some(chunk, sizeof chunk, deadline);
    if (n == -2) return fail(Error::kTimeout, "reply timed out");
    if (n == 0) return fail(Error::kIo, "connection closed by the back-end");
    if (n < 0) return fail(Error::kIo, error_);
    buf_.append(chunk, static_cast<size_t>(n));
  }
}

ProbeSession::Error ProbeSession::command(const std::string& line, smtp::ParsedReply* reply) {
  if (fd_ < 0) return Error::kIo;
  auto deadline = Clock::now() + command_timeout_;
  if (Error e = write_all(line + "\r\n", deadline); e != Error::kNone) return e;
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
