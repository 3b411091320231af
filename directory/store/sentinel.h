// Redis Sentinel: finding the current Redis primary and following it.
//
// With --redis-sentinel the directory does not know its Redis primary's
// address: it asks the sentinels (SENTINEL get-master-addr-by-name
// --redis-master-name, in the order given; the first that answers wins) and
// keeps the answer in a PrimaryLocator shared by every pool connection
// (pool.h). A connection connects to locator->current(), checks that ROLE
// says "master" there (redis.h) and remembers the locator's generation.
//
// The locator changes its primary (and its generation, which makes every pool
// connection reconnect before its next job; the pool is woken at once):
//   - on a +switch-master notice for our master name, read from a
//     subscription on one sentinel (the watcher thread; a sentinel that goes
//     away is replaced by the next in the list);
//   - when the watcher's poll (every `poll`, default 1 s) gets another answer
//     from the sentinels than the primary in use (a missed notice);
//   - when a connection found that the primary in use is no primary any more
//     (a READONLY reply, or ROLE not "master" at connect): refresh().
// The same poll checks ROLE on the primary and sets
// doorman_directory_redis_primary_found (0: no sentinel names a primary, or
// the one named is down or no primary: alert DoormanRedisNoPrimary).
//
// SECURITY: talks to the sentinels and to Redis only (addresses from the
// operator's options and from the sentinels' answers). Sentinel replies are
// parsed defensively: a malformed answer is "no primary", never a crash.
// The sentinel password (--redis-sentinel-password-file) is sent with AUTH
// and never logged.
//
// Does not: manage Redis (Sentinel does the failover), read from replicas,
// or write anywhere: a failover loses writes that no replica had received;
// admin writes wait for one replica (store.h confirm_replicated) to narrow
// that to nothing acknowledged.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "directory/store/status.h"

namespace doorman::directory::store {

struct Reply;
class RedisConn;

struct Endpoint {
  std::string host;
  int port = 0;

  std::string str() const;  // host:port, [v6]:port
  bool operator==(const Endpoint& o) const { return host == o.host && port == o.port; }
  bool operator!=(const Endpoint& o) const { return !(*this == o); }
};

// Parses "host:port,host:port,..." (an IPv6 address in brackets: [::1]:26379;
// spaces around commas allowed). "" on success, else what is wrong.
std::string parse_endpoints(const std::string& text, std::vector<Endpoint>* out);

// The reply of SENTINEL get-master-addr-by-name: [ip, port]. False for nil
// (the sentinel does not know the name) or anything malformed.
bool parse_master_addr(const Reply& r, Endpoint* out);

// A pub/sub message ["message", "+switch-master", "<name> <old-ip>
// <old-port> <new-ip> <new-port>"]: true, with the new primary, when it is
// about `master_name`.
bool parse_switch_master(const Reply& r, const std::string& master_name, Endpoint* to);

// The reply of ROLE: its first element ("master", "slave", "sentinel") and,
// for a master, the number of replicas connected to it.
struct RoleInfo {
  std::string role;
  int replicas = 0;
};
bool parse_role(const Reply& r, RoleInfo* out);

struct SentinelConfig {
  std::vector<Endpoint> sentinels;
  std::string master_name = "doorman";
  std::string sentinel_password;  // AUTH on the sentinels ("" = none)
  std::string redis_password;     // AUTH on the primary (the watcher's ROLE check)
  std::chrono::milliseconds timeout{1000};  // connect and each command
  std::chrono::milliseconds poll{1000};     // the watcher asks the sentinels this often
};

class PrimaryLocator {
 public:
  explicit PrimaryLocator(SentinelConfig config);
  ~PrimaryLocator();
  PrimaryLocator(const PrimaryLocator&) = delete;
  PrimaryLocator& operator=(const PrimaryLocator&) = delete;

  // Starts / stops the watcher thread (subscription and poll).
  void start();
  void stop();

  // The primary in use; nullopt until a sentinel named one.
  std::optional<Endpoint> current() const;
  // Changes whenever current() does.
  uint64_t generation() const { return generation_.load(); }

  // Asks the sentinels now (in order; one round trip each until one
  // answers) and adopts their answer. kUnavailable when none names a primary.
  Status refresh(Endpoint* out = nullptr);

  // Adopts `primary` (a +switch-master notice, or an answer of the
  // sentinels); counts a primary change when it differs from the current one.
  void adopt(const Endpoint& primary, bool failover_notice);

  // Called (from the thread that saw it) after every change of primary.
  void on_change(std::function<void()> fn);

  const SentinelConfig& config() const { return config_; }

 private:
  void watch_loop();
  // Whether the named primary answers ROLE "master"; sets primary_found.
  void check_primary();

  SentinelConfig config_;
  mutable std::mutex mu_;
  std::optional<Endpoint> current_;
  std::vector<std::function<void()>> listeners_;
  std::atomic<uint64_t> generation_{0};
  size_t first_sentinel_ = 0;  // the last one that answered is asked first

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread watcher_;
  std::unique_ptr<RedisConn> probe_;  // the watcher's ROLE connection
};

}  // namespace doorman::directory::store
