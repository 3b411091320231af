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
//
// With a PrimaryLocator (Sentinel, sentinel.h) the address is the locator's
// current primary instead of host:port: connect() checks ROLE there and
// refuses a node that is no primary; a READONLY reply (the node was demoted)
// drops the connection, fails the round trip with kUnavailable and makes the
// locator ask the sentinels again. stale() says the locator has moved on
// since this connection was made (the pool reconnects it).
// Limits: one reply is at most what hiredis accepts (512 MB bulk); callers
// keep batches small (a recipient group, an import chunk).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "directory/store/sentinel.h"
#include "directory/store/status.h"

struct redisContext;

namespace doorman::directory::store {

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // "" = no AUTH
  int db = 0;
  std::chrono::milliseconds timeout{1000};  // connect and each command
  // Sentinel mode: host and port come from here (sentinel.h).
  std::shared_ptr<PrimaryLocator> locator;
  // Admin writes wait this long for one replica's acknowledgement
  // (store.h confirm_replicated); 0 = do not wait.
  std::chrono::milliseconds replica_wait{0};
  // A connection to a sentinel: not counted in the Redis metrics.
  bool sentinel = false;
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
  // One command that the server holds up to `blocks_for` (WAIT): the read
  // timeout is raised by that much for this command only.
  Status blocking_command(const Command& cmd, std::chrono::milliseconds blocks_for, Reply* out);

  // Round trips made since construction (for tests and metrics).
  uint64_t round_trips() const { return round_trips_; }
  const RedisConfig& config() const { return config_; }
  // The address connected to (or last tried).
  const Endpoint& target() const { return target_; }
  // Sentinel mode: the locator's primary changed since connect().
  bool stale() const { return config_.locator && config_.locator->generation() != generation_; }

  // Pub/sub (the sentinel watcher): SUBSCRIBE `channel`, then wait up to
  // `timeout` for the next message; *got says whether one came.
  Status subscribe(const std::string& channel);
  Status next_message(std::chrono::milliseconds timeout, Reply* out, bool* got);

 private:
  Status open(const Endpoint& where);
  void count_error() const;

  RedisConfig config_;
  redisContext* ctx_ = nullptr;
  uint64_t round_trips_ = 0;
  Endpoint target_;
  uint64_t generation_ = 0;
};

// Helpers over replies, used by the store.
bool reply_ok_status(const Reply& r);  // "+OK"

}  // namespace doorman::directory::store
