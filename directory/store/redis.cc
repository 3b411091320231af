#include "directory/store/redis.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

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

RedisConn::RedisConn(RedisConfig config) : config_(std::move(config)) {}
RedisConn::~RedisConn() { disconnect(); }

void RedisConn::disconnect() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
}

Status RedisConn::connect() {
  disconnect();
  redisContext* c = redisConnectWithTimeout(config_.host.c_str(), config_.port, to_timeval(config_.timeout));
  if (c == nullptr) {
    directory_metrics().redis_errors().inc();
    return Status::Unavailable("redis: cannot allocate context");
  }
  if (c->err) {
    directory_metrics().redis_errors().inc();
    std::string msg = "redis " + config_.host + ":" + std::to_string(config_.port) + ": " + c->errstr;
    redisFree(c);
    return Status::Unavailable(msg);
  }
  if (redisSetTimeout(c, to_timeval(config_.timeout)) != REDIS_OK) {
    directory_metrics().redis_errors().inc();
    redisFree(c);
    return Status::Unavailable("redis: cannot set timeout");
  }
  ctx_ = c;
  std::vector<Command> setup;
  if (!config_.password.empty()) setup.push_back({"AUTH", config_.password});
  if (config_.db != 0) setup.push_back({"SELECT", std::to_string(config_.db)});
  if (!setup.empty()) {
    std::vector<Reply> replies;
    Status s = pipeline(setup, &replies);
    if (!s.ok()) return s;
    for (const auto& r : replies) {
      if (r.is_error()) {
        disconnect();
        return Status::Unavailable("redis: " + setup.front()[0] + " failed: " + r.str);
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
      directory_metrics().redis_errors().inc();
      std::string msg = std::string("redis: ") + ctx_->errstr;
      disconnect();
      return Status::Unavailable(msg);
    }
  }
  ++round_trips_;
  const auto started = std::chrono::steady_clock::now();
  out->reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr) {
      directory_metrics().redis_errors().inc();
      std::string msg = std::string("redis: ") + (ctx_->errstr[0] ? ctx_->errstr : "no reply");
      disconnect();
      out->clear();
      return Status::Unavailable(msg);
    }
    auto* r = static_cast<redisReply*>(raw);
    out->push_back(convert(r));
    freeReplyObject(r);
  }
  directory_metrics().redis_command_duration().observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
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

bool reply_ok_status(const Reply& r) { return r.type == Reply::Type::kStatus && r.str == "OK"; }

}  // namespace doorman::directory::store
