// Test support: child processes and loopback ports, for tests that start
// real services (redis-server, doorman-directory, the edge, back-ends).
//
// Process starts a program with fork/exec (argv and extra environment),
// sends its stdout and stderr to a log file, and stops it by PID: SIGTERM,
// then SIGKILL after a timeout, then waitpid, so no test leaves an orphan or
// a zombie. The destructor stops a process that is still running. Nothing
// here throws; failures are reported as false / -1 and in error().
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace doorman::test {

class Process {
 public:
  Process() = default;
  ~Process() { stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // `argv[0]` is the program (looked up in PATH when it has no '/');
  // `env` adds NAME=value pairs to the inherited environment. Output goes
  // to `log_path` (appended). Returns false when fork/exec fails.
  bool start(const std::vector<std::string>& argv, const std::string& log_path,
             const std::vector<std::pair<std::string, std::string>>& env = {});

  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status as
  // waitpid gives it, or -1 when nothing was running.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  // Sends a signal without waiting.
  bool signal(int sig) const;
  // Waits for the process to exit by itself, up to `timeout`. Returns the
  // exit code (0..255), 128+signal, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);

  bool running();
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string read_log() const;

 private:
  pid_t pid_ = -1;
  std::string log_path_;
};

// Runs a program to completion and captures its stdout and stderr.
struct RunResult {
  int exit_code = -1;  // 128+signal when killed; -1 on timeout or failure
  std::string out;
  std::string err;
};
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout = std::chrono::seconds(30),
              const std::string& stdin_text = "", const std::vector<std::pair<std::string, std::string>>& env = {});

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read
// it, close). Another process may take it in between: use it at once.
int free_tcp_port();

// Polls until 127.0.0.1:port accepts a connection, up to `timeout`.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// Polls `cond` every 20 ms until it holds or `timeout` passes (no fixed
// sleeps in tests); returns its last value.
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// A fresh directory under $TMPDIR (or /tmp); removed by remove_tree().
std::string make_temp_dir(const std::string& prefix);
void remove_tree(const std::string& path);

}  // namespace doorman::test
