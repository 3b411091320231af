#include "tests/support/redis_server.h"

#include <signal.h>

#include <thread>

namespace doorman::test {

RedisServer::~RedisServer() {
  stop();
  remove_tree(dir_);
}

bool RedisServer::start(std::chrono::milliseconds timeout) {
  if (dir_.empty()) dir_ = make_temp_dir("doorman-redis");
  if (dir_.empty()) {
    error_ = "cannot create a temp dir";
    return false;
  }
  if (port_ == 0) port_ = free_tcp_port();
  if (port_ <= 0) {
    error_ = "no free port";
    return false;
  }
  std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir_};
  argv.insert(argv.end(), args_.begin(), args_.end());
  if (!process_.start(argv, dir_ + "/redis.log")) {
    error_ = "cannot start redis-server";
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process_.running()) {
      error_ = "redis-server exited: " + process_.read_log();
      return false;
    }
    if (wait_for_port(port_, std::chrono::milliseconds(100)) && ping()) return true;
  }
  error_ = "redis-server did not answer PING on port " + std::to_string(port_);
  process_.stop();
  return false;
}

void RedisServer::stop() { process_.stop(); }

void RedisServer::kill() {
  process_.signal(SIGKILL);
  process_.stop();
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run(argv, std::chrono::seconds(10));
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

bool RedisServer::ping() const { return cli({"PING"}) == "PONG"; }

}  // namespace doorman::test
