// One blocking hiredis connection and pipelined command execution.
//
// RedisConn owns a redisContext with a connect timeout and a command
// timeout; it runs AUTH and SELECT when it connects. pipeline() appends every
// command (redisAppendCommandArgv) and then reads every reply: one network
// round trip for a batch. Replies are copied into plain Reply values so no
// hiredis object escapes this unit.
//
// Metrics: every round trip is timed
// (doorman_directory_redis_command_duration_seconds); failed connection
// attempts and failed round trips are counted
// (doorman_directory_redis_errors_total).
//
// Does not retry or reconnect by itself: after an I/O or protocol error the
// connection is marked broken and every further call fails at once until
// connect() succeeds again (RedisPool does that, with back-off).
// Limits: one reply is at most what hiredis accepts (512 MB bulk); callers
// keep batches small (a recipient group, an import chunk).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "directory/store/status.h"

struct redisContext;

namespace doorman::directory::store {

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // "" = no AUTH
  int db = 0;
  std::chrono::milliseconds timeout{1000};  // connect and each command
};

struct Reply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;  // kArray

  bool is_error() const { return type == Type::kError; }
};

using Command = std::vector<std::string>;

class RedisConn {
 public:
  explicit RedisConn(RedisConfig config);
  ~RedisConn();
  RedisConn(const RedisConn&) = delete;
  RedisConn& operator=(const RedisConn&) = delete;

  // (Re)connects, authenticates and selects the database.
  Status connect();
  bool connected() const { return ctx_ != nullptr; }
  void disconnect();

  // Runs `cmds` in one round trip. On success `out` holds one reply per
  // command (a reply may itself be a Redis error: check is_error()). On an
  // I/O error the connection is dropped and kUnavailable returned.
  Status pipeline(const std::vector<Command>& cmds, std::vector<Reply>* out);
  // One command; a Redis error reply becomes kUnavailable/kInternal status.
  Status command(const Command& cmd, Reply* out);

  // Round trips made since construction (for tests and metrics).
  uint64_t round_trips() const { return round_trips_; }
  const RedisConfig& config() const { return config_; }

 private:
  RedisConfig config_;
  redisContext* ctx_ = nullptr;
  uint64_t round_trips_ = 0;
};

// Helpers over replies, used by the store.
bool reply_ok_status(const Reply& r);  // "+OK"

}  // namespace doorman::directory::store
