// Test support: a real redis-sentinel (Debian's, from PATH) on a free
// loopback port, monitoring one primary.
//
// start() writes sentinel.conf into a temp dir (Sentinel rewrites it, so it
// must be writable) with `sentinel monitor NAME 127.0.0.1 PORT QUORUM` and
// the given down-after and failover timeouts, runs `redis-sentinel
// sentinel.conf` and waits until it answers PING. stop() and the destructor
// stop it by PID and remove the temp dir. Uses Process (process.h).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace doorman::test {

struct SentinelSettings {
  std::string master_name = "doorman";
  int primary_port = 0;
  int quorum = 2;
  int down_after_ms = 1000;
  int failover_timeout_ms = 3000;
};

class RedisSentinel {
 public:
  RedisSentinel() = default;
  ~RedisSentinel();
  RedisSentinel(const RedisSentinel&) = delete;
  RedisSentinel& operator=(const RedisSentinel&) = delete;

  bool start(const SentinelSettings& settings, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void stop();

  int port() const { return port_; }
  const std::string& error() const { return error_; }
  std::string read_log() const { return process_.read_log(); }

  // Runs redis-cli against this sentinel; returns its stdout (trimmed).
  std::string cli(const std::vector<std::string>& args) const;
  // The port of the primary it names for the master name (0 when none).
  int primary_port() const;

 private:
  Process process_;
  SentinelSettings settings_;
  int port_ = 0;
  std::string dir_;
  std::string error_;
};

}  // namespace doorman::test
