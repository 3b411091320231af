// Test support: a real redis-server (from PATH) on a free loopback port.
//
// start() runs `redis-server --port N --bind 127.0.0.1 --save "" --appendonly
// no --daemonize no` in a temp dir and waits until it answers PING. stop()
// and restart() keep the same port (for reconnection tests); data does not
// survive a restart (no persistence). The destructor kills it by PID and
// removes the temp dir. Uses Process (process.h); never a broad pkill.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace doorman::test {

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts on a free port (or the previous one). Returns false and fills
  // error() when it does not answer PING within `timeout`.
  bool start(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void stop();
  // SIGKILL (a crash: no shutdown, no save), then waits for it by PID.
  void kill();
  // Arguments added to the command line from the next start() on (e.g.
  // {"--replicaof", "127.0.0.1", "6380"}).
  void set_args(std::vector<std::string> args) { args_ = std::move(args); }
  bool restart(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    stop();
    return start(timeout);
  }
  bool running() { return process_.running(); }

  int port() const { return port_; }
  pid_t pid() const { return process_.pid(); }
  std::string host() const { return "127.0.0.1"; }
  const std::string& dir() const { return dir_; }
  const std::string& error() const { return error_; }

  // Runs redis-cli against this server; returns its stdout (trimmed).
  std::string cli(const std::vector<std::string>& args) const;
  bool ping() const;

 private:
  Process process_;
  std::vector<std::string> args_;
  int port_ = 0;
  std::string dir_;
  std::string error_;
};

// Shared by RedisServer and RedisSentinel (redis_sentinel.h):
// redis-cli against 127.0.0.1:port; its stdout, trimmed.
std::string redis_cli(int port, const std::vector<std::string>& args);
// A temp dir (`prefix`) and a free port, unless already set.
bool prepare_redis_dir(const std::string& prefix, std::string* dir, int* port, std::string* error);
// Starts `argv` with its output in `log` and waits until it answers PING on
// `port`; on failure stops it and fills *error.
bool start_redis_process(Process& process, const std::vector<std::string>& argv, const std::string& log, int port,
                         std::chrono::milliseconds timeout, std::string* error);

}  // namespace doorman::test
