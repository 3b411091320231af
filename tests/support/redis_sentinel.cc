#include "tests/support/redis_sentinel.h"

#include <fstream>

#include "tests/support/redis_server.h"

namespace doorman::test {

RedisSentinel::~RedisSentinel() {
  stop();
  remove_tree(dir_);
}

bool RedisSentinel::start(const SentinelSettings& settings, std::chrono::milliseconds timeout) {
  settings_ = settings;
  if (!prepare_redis_dir("doorman-sentinel", &dir_, &port_, &error_)) return false;
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
  return start_redis_process(process_, {"redis-sentinel", conf}, dir_ + "/sentinel.log", port_, timeout, &error_);
}

void RedisSentinel::stop() { process_.stop(); }

std::string RedisSentinel::cli(const std::vector<std::string>& args) const { return redis_cli(port_, args); }

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
