// doorman-loadgen: an SMTP load generator for the benchmarks in bench/.
//
// Opens --sessions concurrent sessions to --server (loopback only), and in
// each runs transactions for --seconds: MAIL FROM and --rcpts RCPT TO
// pipelined in one write as real MTAs do (a --unknown-percent share of them
// unknown), then either RSET (reject-heavy scenario) or DATA with a
// --body-bytes message. Measures per-RCPT latency (from the write of the
// group to each reply), counts replies by class, and reports its own CPU time
// so a run can show the client was not the bottleneck.
//
// --unknown-count bounds the unknown local parts (nobody0..nobodyN-1) so a
// callout cache can be warmed; --sweep sends every known and unknown address
// exactly once (spread over the sessions) and stops: that is the warm-up.
//
// --rate R switches to an open loop: R transactions per second offered in
// total, spread evenly over the sessions (each session starts a group every
// sessions/R seconds, the sessions staggered by 1/R). A session that falls
// behind its schedule sends its next group at once, and every RCPT latency is
// measured from the group's *scheduled* start, so queueing in the server shows
// up in the latency instead of silently lowering the offered load
// (coordinated omission). Groups whose scheduled start is reached after
// --seconds are not sent: achieved tx/s below offered_tx_per_s means the
// system did not sustain the rate, and then its latencies are a lower bound.
// Without --rate (closed loop) each session sends its next group as soon as
// the previous transaction ends and latency is measured from the write.
// In both modes every session connects and says EHLO before the clock starts.
//
// --no-pipelining: each session sends MAIL FROM and waits for its reply,
// then each RCPT TO alone, waiting for its reply before the next (as many
// senders do), then RSET/DATA. Closed loop: each RCPT's latency is measured
// from its own write. Open loop: the group's schedule stays the unit; the
// first RCPT of a group is measured from the group's scheduled start (so any
// lateness of the session and the MAIL round trip are in it, as in the
// pipelined mode), every later RCPT from its own write, plus the time the
// group started behind its schedule. A slow server therefore shows up in
// the latencies (the session falls behind and every RCPT of the late group
// carries the lateness) instead of silently lowering the offered load.
//
// --idle N opens N sessions with nonblocking sockets on one epoll (not one
// thread each), reads the greeting, sends EHLO, reads its reply, then prints
// "ready established=M ..." and holds them all open for --hold seconds: the
// harness samples the server's memory meanwhile.
//
// --starttls 1: after EHLO every session sends STARTTLS, does the TLS
// handshake (OpenSSL, no certificate check: the benchmark's certificate is a
// throwaway) and says EHLO again; everything after that goes over TLS. With
// --idle, the sessions held are TLS sessions.
//
// --handshakes 1 measures new TLS sessions: each of --sessions threads, for
// --seconds, connects, reads the greeting, EHLO, STARTTLS, handshake, EHLO,
// QUIT, closes, and starts again (closed loop; a full handshake each time,
// no resumption). Reports tls_sessions and tls_sessions_per_s.
//
// Output: one line of key=value pairs (machine-readable) on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <latch>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 2525;
  int sessions = 64;
  int rcpts = 10;
  int unknown_percent = 50;
  double seconds = 10;
  int body_bytes = 0;  // 0: RSET after the RCPTs (no DATA)
  std::string domain = "example.com";
  std::string known_prefix = "user";  // user0..userN-1 are listed
  int known_count = 1000;
  int unknown_count = 1000000;  // nobody0..nobodyN-1 are unknown
  bool sweep = false;           // every address once, then stop
  double rate = 0;              // > 0: open loop, transactions/s offered over all sessions
  int idle = 0;                 // > 0: idle-session mode with this many sessions
  double hold = 5;              // idle mode: seconds to hold the sessions
  bool starttls = false;        // STARTTLS after EHLO, then EHLO again inside TLS
  bool handshakes = false;      // closed loop of new TLS sessions
  bool no_pipelining = false;   // one command per round trip (MAIL, then each RCPT alone)
};

// The client side of every TLS session: no verification (a throwaway
// certificate), buffers released while empty (10,000 idle sessions).
SSL_CTX* client_tls() {
  static SSL_CTX* ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    return c;
  }();
  return ctx;
}

using Clock = std::chrono::steady_clock;

struct Stats {
  uint64_t transactions = 0, messages_ok = 0, rcpt_2xx = 0, rcpt_4xx = 0, rcpt_5xx = 0, errors = 0;
  uint64_t late_groups = 0;  // open loop: groups sent more than 1 ms after their scheduled start
  std::vector<double> rcpt_latency_us;
};

class Conn {
 public:
  bool connect(const Options& o) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o.port));
    inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{30, 0};  // a blocking SSL_read must not hang the run
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Conn() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  // EHLO, STARTTLS, the handshake and EHLO again (after the greeting and EHLO).
  bool start_tls() {
    if (!send("STARTTLS\r\n") || reply() != 220 || pos_ != buf_.size()) return false;
    buf_.clear();
    pos_ = 0;
    ssl_ = SSL_new(client_tls());
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      ERR_clear_error();
      return false;
    }
    return send("EHLO loadgen.test\r\n") && reply() == 250;
  }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n;
      if (ssl_) {
        size_t w = 0;
        n = SSL_write_ex(ssl_, s.data() + off, s.size() - off, &w) == 1 ? static_cast<ssize_t>(w) : -1;
      } else {
        n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      }
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads one complete reply; returns its code or -1.
  int reply() {
    while (true) {
      size_t lf;
      while ((lf = buf_.find("\r\n", pos_)) != std::string::npos) {
        std::string_view line(buf_.data() + pos_, lf - pos_);
        pos_ = lf + 2;
        if (line.size() >= 4 && line[3] == '-') continue;
        if (line.size() < 3) return -1;
        if (pos_ > 65536) {
          buf_.erase(0, pos_);
          pos_ = 0;
        }
        return std::atoi(std::string(line.substr(0, 3)).c_str());
      }
      char tmp[16384];
      ssize_t n;
      if (ssl_) {
        size_t got = 0;
        n = SSL_read_ex(ssl_, tmp, sizeof tmp, &got) == 1 ? static_cast<ssize_t>(got) : -1;
      } else {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 30000) <= 0) return -1;
        n = ::recv(fd_, tmp, sizeof tmp, 0);
      }
      if (n <= 0) return -1;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string buf_;
  size_t pos_ = 0;
};

// The common clock: every session connects first (connected), then the main
// thread sets start and end and opens the gate (go).
struct Schedule {
  std::latch connected;
  std::latch go{1};
  Clock::time_point start, end;
  explicit Schedule(int sessions) : connected(sessions) {}
};

void run_session(const Options& o, int index, Schedule* sched, Stats* out) {
  std::mt19937 rng(static_cast<unsigned>(index * 7919 + 1));
  Conn c;
  bool up = c.connect(o) && c.reply() == 220 && c.send("EHLO loadgen.test\r\n") && c.reply() == 250 &&
            (!o.starttls || c.start_tls());
  sched->connected.count_down();
  sched->go.wait();
  if (!up) {
    ++out->errors;
    return;
  }
  const Clock::time_point end = sched->end;
  // Open loop: this session's k-th group is due at start + (index + k * sessions) / rate.
  const bool open_loop = o.rate > 0;
  const auto interval = std::chrono::duration<double>(static_cast<double>(o.sessions) / (open_loop ? o.rate : 1));
  const auto first = std::chrono::duration<double>(static_cast<double>(index) / (open_loop ? o.rate : 1));
  uint64_t k = 0;
  std::string body;
  if (o.body_bytes > 0) {
    body = "Subject: load\r\n\r\n";
    while (body.size() < static_cast<size_t>(o.body_bytes)) body += std::string(76, 'x') + "\r\n";
    body += ".\r\n";
  }
  // Sweep: this session's share of all addresses, known ones first.
  std::vector<std::string> sweep_list;
  size_t sweep_next = 0;
  if (o.sweep) {
    for (int i = index; i < o.known_count + o.unknown_count; i += o.sessions)
      sweep_list.push_back(i < o.known_count ? o.known_prefix + std::to_string(i)
                                             : "nobody" + std::to_string(i - o.known_count));
  }
  while (o.sweep ? sweep_next < sweep_list.size() : Clock::now() < end) {
    Clock::time_point due{};
    if (open_loop) {
      due = sched->start + std::chrono::duration_cast<Clock::duration>(first + interval * static_cast<double>(k++));
      if (due >= end) break;
    }
    std::string group = "MAIL FROM:<load@sender.test>\r\n";
    int in_group = 0;
    for (int i = 0; i < o.rcpts; ++i) {
      if (o.sweep) {
        if (sweep_next == sweep_list.size()) break;
        group += "RCPT TO:<" + sweep_list[sweep_next++] + "@" + o.domain + ">\r\n";
      } else if (static_cast<int>(rng() % 100) < o.unknown_percent) {
        group += "RCPT TO:<nobody" + std::to_string(rng() % static_cast<unsigned>(o.unknown_count)) + "@" + o.domain +
                 ">\r\n";
      } else {
        group += "RCPT TO:<" + o.known_prefix + std::to_string(rng() % static_cast<unsigned>(o.known_count)) + "@" +
                 o.domain + ">\r\n";
      }
      ++in_group;
    }
    if (open_loop) {
      std::this_thread::sleep_until(due);
      if (Clock::now() - due > std::chrono::milliseconds(1)) ++out->late_groups;
    }
    // Closed loop: from the write; open loop: from the schedule (which includes any lateness).
    auto t0 = open_loop ? due : Clock::now();
    int ok = 0;
    auto count = [&](int code, Clock::time_point from) {
      out->rcpt_latency_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - from).count());
      if (code < 300) ++out->rcpt_2xx, ++ok;
      else if (code < 500) ++out->rcpt_4xx;
      else ++out->rcpt_5xx;
    };
    if (o.no_pipelining) {
      // One command per round trip; see the header for what each latency is measured from.
      const auto behind = open_loop ? std::max(Clock::duration::zero(), Clock::now() - due) : Clock::duration::zero();
      size_t at = 0;
      auto next_line = [&](std::string* line) {
        size_t lf = group.find("\r\n", at);
        *line = group.substr(at, lf + 2 - at);
        at = lf + 2;
      };
      std::string line;
      next_line(&line);
      if (!c.send(line) || c.reply() != 250) {
        ++out->errors;
        return;
      }
      for (int i = 0; i < in_group; ++i) {
        next_line(&line);
        auto from = i == 0 ? t0 : Clock::now() - behind;
        int code = c.send(line) ? c.reply() : -1;
        if (code < 0) {
          ++out->errors;
          return;
        }
        count(code, from);
      }
    } else {
      if (!c.send(group) || c.reply() != 250) {
        ++out->errors;
        return;
      }
      for (int i = 0; i < in_group; ++i) {
        int code = c.reply();
        if (code < 0) {
          ++out->errors;
          return;
        }
        count(code, t0);
      }
    }
    if (o.body_bytes > 0 && ok > 0) {
      if (!c.send("DATA\r\n") || c.reply() != 354 || !c.send(body)) {
        ++out->errors;
        return;
      }
      int code = c.reply();
      if (code == 250) ++out->messages_ok;
      else if (code < 0) { ++out->errors; return; }
    } else {
      if (!c.send("RSET\r\n") || c.reply() != 250) {
        ++out->errors;
        return;
      }
    }
    ++out->transactions;
  }
  c.send("QUIT\r\n");
  c.reply();
}

// Idle mode: one epoll, nonblocking sockets, at most kConnecting handshakes
// in flight (so the listen backlog never overflows). Each connection walks
// greeting -> EHLO -> reply, then stays open doing nothing.
int run_idle(const Options& o) {
  constexpr int kConnecting = 256;
  enum State { kGreeting, kEhloReply, kStartTlsReply, kHandshake, kTlsEhloReply, kIdle, kFailed };
  struct Idle {
    int fd = -1;
    SSL* ssl = nullptr;
    State state = kGreeting;
    std::string buf;
  };
  static const char kEhlo[] = "EHLO loadgen.test\r\n";
  auto start = Clock::now();
  std::vector<Idle> conns(static_cast<size_t>(o.idle));
  int ep = epoll_create1(0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &a.sin_addr);
  int opened = 0, in_flight = 0, established = 0, failed = 0;
  auto open_more = [&] {
    while (opened < o.idle && in_flight < kConnecting) {
      Idle& c = conns[static_cast<size_t>(opened)];
      c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (c.fd < 0) {
        std::fprintf(stderr, "socket: %s (raise ulimit -n)\n", std::strerror(errno));
        c.state = kFailed;
        ++failed;
        ++opened;
        continue;
      }
      int r = ::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
      if (r != 0 && errno != EINPROGRESS) {
        ::close(c.fd);
        c.fd = -1;
        c.state = kFailed;
        ++failed;
        ++opened;
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u32 = static_cast<uint32_t>(opened);
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
      ++opened;
      ++in_flight;
    }
  };
  // Returns true when a complete (last-line) reply with the expected code arrived.
  auto complete_reply = [](std::string& buf, int* code) {
    size_t pos = 0, lf;
    while ((lf = buf.find("\r\n", pos)) != std::string::npos) {
      if (lf - pos >= 4 && buf[pos + 3] == '-') {
        pos = lf + 2;
        continue;
      }
      *code = std::atoi(buf.substr(pos, 3).c_str());
      buf.erase(0, lf + 2);
      return true;
    }
    return false;
  };
  open_more();
  auto deadline = Clock::now() + std::chrono::seconds(120);
  std::vector<epoll_event> events(1024);
  // Reads what is there (through TLS once it is up): > 0 bytes, 0 nothing yet, < 0 closed or failed.
  auto receive = [](Idle& c) -> ssize_t {
    char tmp[4096];
    if (!c.ssl) {
      ssize_t r = ::recv(c.fd, tmp, sizeof tmp, 0);
      if (r > 0) c.buf.append(tmp, static_cast<size_t>(r));
      return r < 0 && errno == EAGAIN ? 0 : r == 0 ? -1 : r;
    }
    ssize_t total = 0;
    while (true) {
      size_t n = 0;
      int r = SSL_read_ex(c.ssl, tmp, sizeof tmp, &n);
      if (r == 1) {
        c.buf.append(tmp, n);
        total += static_cast<ssize_t>(n);
        continue;
      }
      int e = SSL_get_error(c.ssl, r);
      ERR_clear_error();
      return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? total : -1;
    }
  };
  auto send_ehlo = [](Idle& c) {
    if (!c.ssl) return ::send(c.fd, kEhlo, sizeof kEhlo - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof kEhlo - 1);
    size_t n = 0;
    bool ok = SSL_write_ex(c.ssl, kEhlo, sizeof kEhlo - 1, &n) == 1;
    ERR_clear_error();
    return ok;
  };
  // Drives the handshake; false when it failed.
  auto handshake = [&](Idle& c, uint32_t index) {
    int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
      c.state = kTlsEhloReply;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u32 = index;
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      return send_ehlo(c);
    }
    int e = SSL_get_error(c.ssl, r);
    ERR_clear_error();
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return false;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : 0u);
    ev.data.u32 = index;
    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
    return true;
  };
  while (established + failed < o.idle && Clock::now() < deadline) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    for (int i = 0; i < n; ++i) {
      uint32_t index = events[static_cast<size_t>(i)].data.u32;
      Idle& c = conns[index];
      if (c.state == kIdle || c.state == kFailed) continue;
      bool bad = false;
      int code = 0;
      if (c.state == kHandshake) {
        bad = !handshake(c, index);
      } else {
        bad = receive(c) < 0;
      }
      while (!bad && c.state != kHandshake && c.state != kIdle && complete_reply(c.buf, &code)) {
        if (c.state == kGreeting && code == 220) {
          bad = !send_ehlo(c);
          c.state = kEhloReply;
        } else if ((c.state == kEhloReply && code == 250 && !o.starttls) || (c.state == kTlsEhloReply && code == 250)) {
          c.state = kIdle;
          std::string().swap(c.buf);
          ++established;
          --in_flight;
        } else if (c.state == kEhloReply && code == 250) {
          static const char kStartTls[] = "STARTTLS\r\n";
          bad = ::send(c.fd, kStartTls, sizeof kStartTls - 1, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof kStartTls - 1);
          c.state = kStartTlsReply;
        } else if (c.state == kStartTlsReply && code == 220 && c.buf.empty()) {
          c.ssl = SSL_new(client_tls());
          SSL_set_fd(c.ssl, c.fd);
          SSL_set_connect_state(c.ssl);
          c.state = kHandshake;
          bad = !handshake(c, index);
          if (!bad && c.state == kTlsEhloReply) bad = receive(c) < 0;
        } else {
          bad = true;
        }
      }
      if (bad) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        if (c.ssl) SSL_free(c.ssl);
        c.ssl = nullptr;
        ::close(c.fd);
        c.fd = -1;
        c.state = kFailed;
        ++failed;
        --in_flight;
      }
    }
    open_more();
  }
  double setup_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("ready established=%d failed=%d setup_s=%.2f\n", established, failed, setup_s);
  std::fflush(stdout);
  // Hold: drain (and ignore) anything the server sends, e.g. a timeout 421.
  auto hold_end = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.hold * 1000));
  int lost = 0;
  while (Clock::now() < hold_end) {
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 200);
    for (int i = 0; i < n; ++i) {
      Idle& c = conns[events[static_cast<size_t>(i)].data.u32];
      if (c.fd < 0) continue;
      ssize_t r = receive(c);
      c.buf.clear();
      if (r < 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        if (c.ssl) SSL_free(c.ssl);
        c.ssl = nullptr;
        ::close(c.fd);
        c.fd = -1;
        ++lost;
      }
    }
  }
  for (auto& c : conns) {
    if (c.ssl) SSL_free(c.ssl);
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(ep);
  std::printf("idle_sessions=%d established=%d failed=%d lost_during_hold=%d setup_s=%.2f errors=%d\n", o.idle,
              established, failed, lost, setup_s, failed + lost);
  return failed + lost > 0 ? 1 : 0;
}

double cpu_seconds();

// Handshake mode: --sessions threads, each a closed loop of whole new TLS
// sessions (connect ... QUIT) for --seconds.
int run_handshakes(const Options& o) {
  std::atomic<uint64_t> done{0}, errors{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point end = start + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  double cpu0 = cpu_seconds();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.sessions; ++i)
    threads.emplace_back([&] {
      while (Clock::now() < end) {
        Conn c;
        bool ok = c.connect(o) && c.reply() == 220 && c.send("EHLO loadgen.test\r\n") && c.reply() == 250 &&
                  c.start_tls() && c.send("QUIT\r\n") && c.reply() == 221;
        ++(ok ? done : errors);
        if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("seconds=%.2f tls_sessions=%llu tls_sessions_per_s=%.1f errors=%llu client_cpu_s=%.2f\n", elapsed,
              static_cast<unsigned long long>(done.load()), static_cast<double>(done.load()) / elapsed,
              static_cast<unsigned long long>(errors.load()), cpu_seconds() - cpu0);
  return errors.load() > 0 ? 1 : 0;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--no-pipelining") {  // a flag
      o.no_pipelining = true;
      --i;
      continue;
    }
    if (i + 1 == argc) {
      std::fprintf(stderr, "option %s needs a value\n", k.c_str());
      return 2;
    }
    std::string v = argv[i + 1];
    if (k == "--server") {
      size_t colon = v.rfind(':');
      o.host = v.substr(0, colon);
      o.port = std::atoi(v.c_str() + colon + 1);
    } else if (k == "--sessions") o.sessions = std::atoi(v.c_str());
    else if (k == "--rcpts") o.rcpts = std::atoi(v.c_str());
    else if (k == "--unknown-percent") o.unknown_percent = std::atoi(v.c_str());
    else if (k == "--seconds") o.seconds = std::atof(v.c_str());
    else if (k == "--body-bytes") o.body_bytes = std::atoi(v.c_str());
    else if (k == "--domain") o.domain = v;
    else if (k == "--known-count") o.known_count = std::atoi(v.c_str());
    else if (k == "--unknown-count") o.unknown_count = std::max(1, std::atoi(v.c_str()));
    else if (k == "--sweep") o.sweep = std::atoi(v.c_str()) != 0;
    else if (k == "--rate") o.rate = std::atof(v.c_str());
    else if (k == "--idle") o.idle = std::atoi(v.c_str());
    else if (k == "--hold") o.hold = std::atof(v.c_str());
    else if (k == "--starttls") o.starttls = std::atoi(v.c_str()) != 0;
    else if (k == "--handshakes") o.handshakes = std::atoi(v.c_str()) != 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.host.rfind("127.", 0) != 0 && o.host != "::1") {
    std::fprintf(stderr, "loadgen sends only to loopback\n");
    return 2;
  }
  if (o.idle > 0) return run_idle(o);
  if (o.handshakes) return run_handshakes(o);
  if (o.rate > 0 && o.sweep) {
    std::fprintf(stderr, "--rate and --sweep do not mix\n");
    return 2;
  }
  std::vector<Stats> stats(static_cast<size_t>(o.sessions));
  std::vector<std::thread> threads;
  Schedule sched(o.sessions);
  for (int i = 0; i < o.sessions; ++i)
    threads.emplace_back(run_session, std::cref(o), i, &sched, &stats[static_cast<size_t>(i)]);
  sched.connected.wait();
  double cpu0 = cpu_seconds();
  sched.start = Clock::now();
  sched.end = sched.start + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  sched.go.count_down();
  for (auto& t : threads) t.join();
  // Open loop: the offered load ends at --seconds; the rate is taken over that span (a transaction still
  // finishing after it counts, as it was offered inside it).
  double elapsed = std::chrono::duration<double>(Clock::now() - sched.start).count();
  double span = o.rate > 0 ? o.seconds : elapsed;
  double cpu = cpu_seconds() - cpu0;
  Stats total;
  for (auto& s : stats) {
    total.transactions += s.transactions;
    total.messages_ok += s.messages_ok;
    total.rcpt_2xx += s.rcpt_2xx;
    total.rcpt_4xx += s.rcpt_4xx;
    total.rcpt_5xx += s.rcpt_5xx;
    total.errors += s.errors;
    total.late_groups += s.late_groups;
    total.rcpt_latency_us.insert(total.rcpt_latency_us.end(), s.rcpt_latency_us.begin(), s.rcpt_latency_us.end());
  }
  std::sort(total.rcpt_latency_us.begin(), total.rcpt_latency_us.end());
  auto pct = [&](double p) {
    if (total.rcpt_latency_us.empty()) return 0.0;
    return total.rcpt_latency_us[static_cast<size_t>(p * static_cast<double>(total.rcpt_latency_us.size() - 1))];
  };
  uint64_t rcpts = total.rcpt_2xx + total.rcpt_4xx + total.rcpt_5xx;
  std::printf("seconds=%.2f transactions=%llu tx_per_s=%.1f rcpts=%llu rcpt_per_s=%.1f rcpt_2xx=%llu rcpt_4xx=%llu "
              "rcpt_5xx=%llu messages_ok=%llu msg_per_s=%.1f p50_rcpt_us=%.0f p99_rcpt_us=%.0f p999_rcpt_us=%.0f "
              "max_rcpt_us=%.0f errors=%llu client_cpu_s=%.2f",
              elapsed, static_cast<unsigned long long>(total.transactions),
              static_cast<double>(total.transactions) / span, static_cast<unsigned long long>(rcpts),
              static_cast<double>(rcpts) / span, static_cast<unsigned long long>(total.rcpt_2xx),
              static_cast<unsigned long long>(total.rcpt_4xx), static_cast<unsigned long long>(total.rcpt_5xx),
              static_cast<unsigned long long>(total.messages_ok), static_cast<double>(total.messages_ok) / span,
              pct(0.5), pct(0.99), pct(0.999), pct(1.0), static_cast<unsigned long long>(total.errors), cpu);
  if (o.rate > 0)
    std::printf(" offered_tx_per_s=%.1f achieved_ratio=%.3f late_groups=%llu", o.rate,
                static_cast<double>(total.transactions) / span / o.rate,
                static_cast<unsigned long long>(total.late_groups));
  std::printf("\n");
  return total.errors > 0 ? 1 : 0;
}
