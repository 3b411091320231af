#include "tests/integration/stack.h"

#include <unistd.h>

#include <fstream>

namespace doorman::test {

Stack::Stack() : dir_(make_temp_dir("doorman-it")) {
  // The admin API needs a bearer token: the stack runs the real path.
  std::ofstream(dir_ + "/admin-token") << "it-token-" << getpid() << "\n";
}

Stack::~Stack() {
  edge_.stop();
  directory_.stop();
  redis_.stop();
  remove_tree(dir_);
}

std::string Stack::logs() {
  return "--- edge log ---\n" + edge_.read_log() + "--- directory log ---\n" + directory_.read_log();
}

std::string Stack::start_directory() {
  if (directory_port_ == 0) directory_port_ = free_tcp_port();
  std::vector<std::string> argv = {DOORMAN_DIRECTORY_BIN, "--listen", "127.0.0.1:" + std::to_string(directory_port_),
                                   "--redis-port", std::to_string(redis_.port()), "--redis-timeout-ms", "300",
                                   "--shutdown-grace-seconds", "1", "--log-level", "debug", "--http-listen=",
                                   "--admin-token-file", dir_ + "/admin-token"};
  argv.insert(argv.end(), directory_args_.begin(), directory_args_.end());
  if (!directory_.start(argv, dir_ + "/directory.log"))
    return "cannot start doorman-directory";
  if (!wait_for_port(directory_port_, std::chrono::seconds(10))) return "directory did not listen\n" + logs();
  return "";
}

int Stack::stop_directory() { return directory_.stop(); }

std::string Stack::start_edge(const std::vector<std::string>& extra) {
  if (edge_port_ == 0) edge_port_ = free_tcp_port();
  std::vector<std::string> argv = {DOORMAN_EDGE_BIN, "--listen", "127.0.0.1:" + std::to_string(edge_port_),
                                   "--directory", "127.0.0.1:" + std::to_string(directory_port_),
                                   "--hostname", "mx.test", "--threads", "2", "--directory-timeout-ms", "1000",
                                   "--shutdown-grace-seconds", "2", "--log-level", "debug", "--http-listen=",
                                   "--greet-pause-ms", "0"};
  argv.insert(argv.end(), edge_args_.begin(), edge_args_.end());
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (!edge_.start(argv, dir_ + "/edge.log")) return "cannot start doorman-edge";
  if (!wait_for_port(edge_port_, std::chrono::seconds(10))) return "edge did not listen\n" + logs();
  return "";
}

int Stack::stop_edge() { return edge_.stop(); }

RunResult Stack::ctl(std::vector<std::string> args) {
  args.insert(args.begin(), ctl_args_.begin(), ctl_args_.end());
  args.insert(args.begin(), {DOORMANCTL_BIN, "--server", "127.0.0.1:" + std::to_string(directory_port_),
                             "--token-file", dir_ + "/admin-token"});
  return run(args, std::chrono::seconds(30));
}

std::string Stack::start(const std::string& domains_yaml, const std::vector<std::string>& edge_args) {
  edge_args_ = edge_args;
  if (!redis_.start()) return "redis: " + redis_.error();
  std::string err = start_directory();
  if (!err.empty()) return err;
  std::string path = dir_ + "/domains.yaml";
  std::ofstream(path) << domains_yaml;
  RunResult r = ctl({"apply", "-f", path});
  if (r.exit_code != 0) return "apply failed: " + r.out + r.err;
  return start_edge();
}

}  // namespace doorman::test
