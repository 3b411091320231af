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
// Output: one line of key=value pairs (machine-readable) on stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
};

using Clock = std::chrono::steady_clock;

struct Stats {
  uint64_t transactions = 0, messages_ok = 0, rcpt_2xx = 0, rcpt_4xx = 0, rcpt_5xx = 0, errors = 0;
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
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
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
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 30000) <= 0) return -1;
      char tmp[16384];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return -1;
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

void run_session(const Options& o, int index, Clock::time_point end, Stats* out) {
  std::mt19937 rng(static_cast<unsigned>(index * 7919 + 1));
  Conn c;
  if (!c.connect(o) || c.reply() != 220 || !c.send("EHLO loadgen.test\r\n") || c.reply() != 250) {
    ++out->errors;
    return;
  }
  std::string body;
  if (o.body_bytes > 0) {
    body = "Subject: load\r\n\r\n";
    while (body.size() < static_cast<size_t>(o.body_bytes)) body += std::string(76, 'x') + "\r\n";
    body += ".\r\n";
  }
  while (Clock::now() < end) {
    std::string group = "MAIL FROM:<load@sender.test>\r\n";
    for (int i = 0; i < o.rcpts; ++i) {
      bool unknown = static_cast<int>(rng() % 100) < o.unknown_percent;
      if (unknown)
        group += "RCPT TO:<nobody" + std::to_string(rng() % 1000000) + "@" + o.domain + ">\r\n";
      else
        group += "RCPT TO:<" + o.known_prefix + std::to_string(rng() % o.known_count) + "@" + o.domain + ">\r\n";
    }
    auto t0 = Clock::now();
    if (!c.send(group) || c.reply() != 250) {
      ++out->errors;
      return;
    }
    int ok = 0;
    for (int i = 0; i < o.rcpts; ++i) {
      int code = c.reply();
      if (code < 0) {
        ++out->errors;
        return;
      }
      out->rcpt_latency_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (code < 300) ++out->rcpt_2xx, ++ok;
      else if (code < 500) ++out->rcpt_4xx;
      else ++out->rcpt_5xx;
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

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
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
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (o.host.rfind("127.", 0) != 0 && o.host != "::1") {
    std::fprintf(stderr, "loadgen sends only to loopback\n");
    return 2;
  }
  std::vector<Stats> stats(static_cast<size_t>(o.sessions));
  std::vector<std::thread> threads;
  auto start = Clock::now();
  auto end = start + std::chrono::milliseconds(static_cast<int64_t>(o.seconds * 1000));
  double cpu0 = cpu_seconds();
  for (int i = 0; i < o.sessions; ++i) threads.emplace_back(run_session, std::cref(o), i, end, &stats[static_cast<size_t>(i)]);
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  double cpu = cpu_seconds() - cpu0;
  Stats total;
  for (auto& s : stats) {
    total.transactions += s.transactions;
    total.messages_ok += s.messages_ok;
    total.rcpt_2xx += s.rcpt_2xx;
    total.rcpt_4xx += s.rcpt_4xx;
    total.rcpt_5xx += s.rcpt_5xx;
    total.errors += s.errors;
    total.rcpt_latency_us.insert(total.rcpt_latency_us.end(), s.rcpt_latency_us.begin(), s.rcpt_latency_us.end());
  }
  std::sort(total.rcpt_latency_us.begin(), total.rcpt_latency_us.end());
  auto pct = [&](double p) {
    if (total.rcpt_latency_us.empty()) return 0.0;
    return total.rcpt_latency_us[static_cast<size_t>(p * static_cast<double>(total.rcpt_latency_us.size() - 1))];
  };
  uint64_t rcpts = total.rcpt_2xx + total.rcpt_4xx + total.rcpt_5xx;
  std::printf("seconds=%.2f transactions=%llu tx_per_s=%.1f rcpts=%llu rcpt_per_s=%.1f rcpt_2xx=%llu rcpt_4xx=%llu "
              "rcpt_5xx=%llu messages_ok=%llu msg_per_s=%.1f p50_rcpt_us=%.0f p99_rcpt_us=%.0f errors=%llu "
              "client_cpu_s=%.2f\n",
              elapsed, static_cast<unsigned long long>(total.transactions),
              static_cast<double>(total.transactions) / elapsed, static_cast<unsigned long long>(rcpts),
              static_cast<double>(rcpts) / elapsed, static_cast<unsigned long long>(total.rcpt_2xx),
              static_cast<unsigned long long>(total.rcpt_4xx), static_cast<unsigned long long>(total.rcpt_5xx),
              static_cast<unsigned long long>(total.messages_ok), static_cast<double>(total.messages_ok) / elapsed,
              pct(0.5), pct(0.99), static_cast<unsigned long long>(total.errors), cpu);
  return total.errors > 0 ? 1 : 0;
}
