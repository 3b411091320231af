#include "tests/support/redis_server.h"

#include <signal.h>

#include <thread>

namespace doorman::test {

RedisServer::~RedisServer() {
  stop();
  remove_tree(dir_);
}

bool prepare_redis_dir(const std::string& prefix, std::string* dir, int* port, std::string* error) {
  if (dir->empty()) *dir = make_temp_dir(prefix);
  if (dir->empty()) {
    *error = "cannot create a temp dir";
    return false;
  }
  if (*port == 0) *port = free_tcp_port();
  if (*port <= 0) {
    *error = "no free port";
    return false;
  }
  return true;
}

bool start_redis_process(Process& process, const std::vector<std::string>& argv, const std::string& log, int port,
                         std::chrono::milliseconds timeout, std::string* error) {
  if (!process.start(argv, log)) {
    *error = "cannot start " + argv[0];
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!process.running()) {
      *error = argv[0] + " exited: " + process.read_log();
      return false;
    }
    if (wait_for_port(port, std::chrono::milliseconds(100)) && redis_cli(port, {"PING"}) == "PONG") return true;
  }
  *error = argv[0] + " did not answer PING on port " + std::to_string(port);
  process.stop();
  return false;
}

std::string redis_cli(int port, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run(argv, std::chrono::seconds(10));
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

bool RedisServer::start(std::chrono::milliseconds timeout) {
  if (!prepare_redis_dir("doorman-redis", &dir_, &port_, &error_)) return false;
  std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir_};
  argv.insert(argv.end(), args_.begin(), args_.end());
  return start_redis_process(process_, argv, dir_ + "/redis.log", port_, timeout, &error_);
}

void RedisServer::stop() { process_.stop(); }

void RedisServer::kill() {
  process_.signal(SIGKILL);
  process_.stop();
}

std::string RedisServer::cli(const std::vector<std::string>& args) const { return redis_cli(port_, args); }

bool RedisServer::ping() const { return cli({"PING"}) == "PONG"; }

}  // namespace doorman::test
