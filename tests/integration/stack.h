// The whole Doorman stack as real processes on loopback, for integration
// tests: redis-server, doorman-directory (domains applied with the real
// doormanctl) and doorman-edge, each on a free port, each stopped by PID.
#pragma once

#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace doorman::test {

class Stack {
 public:
  Stack();
  ~Stack();

  // Starts Redis, the directory, applies `domains_yaml` (text) and starts the
  // edge with `edge_args` added. Returns "" or what went wrong (with logs).
  std::string start(const std::string& domains_yaml, const std::vector<std::string>& edge_args = {});

  // Arguments added to the directory's command line and to every
  // doormanctl call (e.g. TLS options); set them before start().
  void set_directory_args(std::vector<std::string> args) { directory_args_ = std::move(args); }
  void set_ctl_args(std::vector<std::string> args) { ctl_args_ = std::move(args); }

  std::string start_directory();
  int stop_directory();  // exit status
  std::string start_edge(const std::vector<std::string>& extra = {});
  int stop_edge();
  RunResult ctl(std::vector<std::string> args);

  RedisServer& redis() { return redis_; }
  Process& edge() { return edge_; }
  Process& directory() { return directory_; }
  int edge_port() const { return edge_port_; }
  int directory_port() const { return directory_port_; }
  const std::string& dir() const { return dir_; }
  std::string logs();

 private:
  RedisServer redis_;
  Process directory_;
  Process edge_;
  std::string dir_;
  int directory_port_ = 0;
  int edge_port_ = 0;
  std::vector<std::string> edge_args_;
  std::vector<std::string> directory_args_;
  std::vector<std::string> ctl_args_;
};

}  // namespace doorman::test
