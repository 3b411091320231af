#include "tests/support/redis_sentinel.h"

#include <fstream>

namespace doorman::test {

RedisSentinel::~RedisSentinel() {
  stop();
  remove_tree(dir_);
}

bool RedisSentinel::start(const SentinelSettings& settings, std::chrono::milliseconds timeout) {
  settings_ = settings;
  if (dir_.empty()) dir_ = make_temp_dir("doorman-sentinel");
  if (dir_.empty()) {
    error_ = "cannot create a temp dir";
    return false;
  }
  if (port_ == 0) port_ = free_tcp_port();
  if (port_ <= 0) {
    error_ = "no free port";
    return false;
  }
  const std::string conf = dir_ + "/sentinel.conf";
  {
    std::ofstream f(conf);
    const std::string& n = settings.master_name;
    f << "port " << port_ << "\n"
      << "bind 127.0.0.1\n"
      << "daemonize no\n"
      << "dir " << dir_ << "\n"
      << "sentinel monitor " << n << " 127.0.0.1 " << settings.primary_port << " " << settings.quorum << "\n"
      << "sentinel down-after-milliseconds " << n << " " << settings.down_after_ms << "\n"
      << "sentinel failover-timeout " << n << " " << settings.failover_timeout_ms << "\n"
      << "sentinel parallel-syncs " << n << " 1\n";
    if (!f) {
      error_ = "cannot write " + conf;
      return false;
    }
  }
  if (!process_.start({"redis-sentinel", conf}, dir_ + "/sentinel.log")) {
    error_ = "cannot start redis-sentinel";
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_.running()) {
      error_ = "redis-sentinel exited: " + process_.read_log();
      return false;
    }
    if (wait_for_port(port_, std::chrono::milliseconds(100)) && cli({"PING"}) == "PONG") return true;
  }
  error_ = "redis-sentinel did not answer PING on port " + std::to_string(port_);
  process_.stop();
  return false;
}

void RedisSentinel::stop() { process_.stop(); }

std::string RedisSentinel::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run(argv, std::chrono::seconds(10));
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

int RedisSentinel::primary_port() const {
  std::string out = cli({"SENTINEL", "get-master-addr-by-name", settings_.master_name});
  size_t nl = out.find('\n');
  if (nl == std::string::npos) return 0;
  try {
    return std::stoi(out.substr(nl + 1));
  } catch (...) {
    return 0;
  }
}

}  // namespace doorman::test
