#include "directory/store/redis.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <cerrno>

#include "directory/metrics.h"

namespace doorman::directory::store {
namespace {

Reply convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
  }
  return out;
}

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

RedisConn::RedisConn(RedisConfig config) : config_(std::move(config)) {
  target_ = {config_.host, config_.port};
}
RedisConn::~RedisConn() { disconnect(); }

void RedisConn::disconnect() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

void RedisConn::count_error() const {
  if (!config_.sentinel) directory_metrics().redis_errors().inc();
}

Status RedisConn::open(const Endpoint& where) {
  disconnect();
  target_ = where;
  const char* what = config_.sentinel ? "sentinel " : "redis ";
  redisContext* c = redisConnectWithTimeout(where.host.c_str(), where.port, to_timeval(config_.timeout));
  if (c == nullptr) {
    count_error();
    return Status::Unavailable("redis: cannot allocate context");
  }
  if (c->err) {
    count_error();
    std::string msg = what + where.str() + ": " + c->errstr;
    redisFree(c);
    return Status::Unavailable(msg);
  }
  if (redisSetTimeout(c, to_timeval(config_.timeout)) != REDIS_OK) {
    count_error();
    redisFree(c);
    return Status::Unavailable("redis: cannot set timeout");
  }
  ctx_ = c;
  return Status::Ok();
}

Status RedisConn::connect() {
  Endpoint where{config_.host, config_.port};
  if (config_.locator) {
    // The generation first: a change while we connect makes us stale at once.
    generation_ = config_.locator->generation();
    std::optional<Endpoint> primary = config_.locator->current();
    if (!primary) {
      Status s = config_.locator->refresh(&where);
      generation_ = config_.locator->generation();
      if (!s.ok()) {
        disconnect();
        count_error();
        return s;
      }
    } else {
      where = *primary;
    }
  }
  Status s = open(where);
  if (!s.ok()) return s;
  std::vector<Command> setup;
  if (!config_.password.empty()) setup.push_back({"AUTH", config_.password});
  if (config_.db != 0) setup.push_back({"SELECT", std::to_string(config_.db)});
  if (config_.locator) setup.push_back({"ROLE"});
  if (!setup.empty()) {
    std::vector<Reply> replies;
    s = pipeline(setup, &replies);
    if (!s.ok()) return s;
    for (size_t i = 0; i < replies.size(); ++i) {
      if (replies[i].is_error()) {
        disconnect();
        return Status::Unavailable("redis: " + setup[i][0] + " failed: " + replies[i].str);
      }
    }
    if (config_.locator) {
      RoleInfo role;
      if (!parse_role(replies.back(), &role) || role.role != "master") {
        disconnect();
        count_error();
        // The sentinels have moved on (or are about to): ask them again.
        (void)config_.locator->refresh();
        return Status::Unavailable("redis " + where.str() + " is no primary (ROLE " +
                                   (role.role.empty() ? "?" : role.role) + ")");
      }
    }
  }
  return Status::Ok();
}

Status RedisConn::pipeline(const std::vector<Command>& cmds, std::vector<Reply>* out) {
  out->clear();
  if (!ctx_) return Status::Unavailable("redis: not connected");
  if (cmds.empty()) return Status::Ok();
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& cmd : cmds) {
    argv.clear();
    lens.clear();
    for (const auto& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    if (redisAppendCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
      count_error();
      std::string msg = std::string("redis: ") + ctx_->errstr;
      disconnect();
      return Status::Unavailable(msg);
    }
  }
  ++round_trips_;
  const auto started = std::chrono::steady_clock::now();
  out->reserve(cmds.size());
  bool readonly = false;
  for (size_t i = 0; i < cmds.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      count_error();
      std::string msg = std::string("redis: ") + (ctx_->errstr[0] ? ctx_->errstr : "no reply");
      disconnect();
      out->clear();
      return Status::Unavailable(msg);
    }
    auto* r = static_cast<redisReply*>(raw);
    out->push_back(convert(r));
    freeReplyObject(r);
    const Reply& last = out->back();
    if (last.is_error() && last.str.rfind("READONLY", 0) == 0) readonly = true;
  }
  if (!config_.sentinel)
    directory_metrics().redis_command_duration().observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  if (readonly) {
    // A replica now (demoted by a failover): never write there again.
    count_error();
    std::string msg = "redis " + target_.str() + ": READONLY (no primary any more)";
    disconnect();
    out->clear();
    if (config_.locator) (void)config_.locator->refresh();
    return Status::Unavailable(msg);
  }
  return Status::Ok();
}

Status RedisConn::subscribe(const std::string& channel) {
  // A subscriber only reads: keepalive notices a peer that vanished without a FIN.
  if (ctx_) (void)redisEnableKeepAlive(ctx_);
  Reply r;
  Status s = command({"SUBSCRIBE", channel}, &r);
  if (!s.ok()) return s;
  if (r.type != Reply::Type::kArray || r.elements.empty() || r.elements[0].str != "subscribe") {
    disconnect();
    return Status::Unavailable("unexpected SUBSCRIBE reply");
  }
  return Status::Ok();
}

Status RedisConn::next_message(std::chrono::milliseconds timeout, Reply* out, bool* got) {
  *got = false;
  if (!ctx_) return Status::Unavailable("redis: not connected");
  void* raw = nullptr;
  // Something already read but not yet parsed comes first.
  if (redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) {
    disconnect();
    return Status::Unavailable("protocol error");
  }
  if (raw == nullptr) {
    pollfd p{ctx_->fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n == 0) return Status::Ok();
    if (n < 0) return errno == EINTR ? Status::Ok() : Status::Unavailable("poll failed");
    if (redisBufferRead(ctx_) != REDIS_OK || redisGetReplyFromReader(ctx_, &raw) != REDIS_OK) {
      std::string msg = std::string("redis: ") + (ctx_->errstr[0] ? ctx_->errstr : "read failed");
      disconnect();
      return Status::Unavailable(msg);
    }
    if (raw == nullptr) return Status::Ok();  // a partial message: the rest comes later
  }
  auto* r = static_cast<redisReply*>(raw);
  *out = convert(r);
  freeReplyObject(r);
  *got = true;
  return Status::Ok();
}

Status RedisConn::command(const Command& cmd, Reply* out) {
  std::vector<Reply> replies;
  Status s = pipeline({cmd}, &replies);
  if (!s.ok()) return s;
  *out = std::move(replies.front());
  if (out->is_error()) return Status::Error(Code::kInternal, "redis " + cmd.front() + ": " + out->str);
  return Status::Ok();
}

Status RedisConn::blocking_command(const Command& cmd, std::chrono::milliseconds blocks_for, Reply* out) {
  if (!ctx_) return Status::Unavailable("redis: not connected");
  if (redisSetTimeout(ctx_, to_timeval(config_.timeout + blocks_for)) != REDIS_OK) {
    disconnect();
    return Status::Unavailable("redis: cannot set timeout");
  }
  Status s = command(cmd, out);
  if (ctx_ && redisSetTimeout(ctx_, to_timeval(config_.timeout)) != REDIS_OK) disconnect();
  return s;
}

bool reply_ok_status(const Reply& r) { return r.type == Reply::Type::kStatus && r.str == "OK"; }

}  // namespace doorman::directory::store
