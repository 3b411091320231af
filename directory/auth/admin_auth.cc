#include "directory/auth/admin_auth.h"

#include <sys/stat.h>

#include <fstream>

#include "common/log.h"
#include "directory/metrics.h"

namespace doorman::directory::auth {

namespace {

constexpr auto kStatInterval = std::chrono::seconds(1);
constexpr std::string_view kBearer = "Bearer ";

grpc::Status fail(const grpc::ServerContextBase& ctx, std::string_view method, AuthFailure reason,
                  const char* why) {
  directory_metrics().admin_auth_failures(reason).inc();
  log::warn("admin_auth_failed").kv("peer", ctx.peer()).kv("method", std::string(method)).kv("reason", why);
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "admin API: missing or invalid bearer token");
}

class BearerInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA))
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerFactory(std::string token) : header_(std::string(kBearer) + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new BearerInterceptor(&header_);
  }

 private:
  std::string header_;
};

}  // namespace

std::string read_token_file(const std::string& path, std::string* token) {
  std::ifstream f(path);
  std::string line;
  if (!f) return "cannot read token file " + path;
  std::getline(f, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
  if (line.empty()) return "token file " + path + " is empty";
  *token = std::move(line);
  return "";
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk all of `a` whatever `b` is, so the time says nothing about the
  // position of the first difference.
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char other = b.empty() ? 0 : static_cast<unsigned char>(b[i % b.size()]);
    diff |= static_cast<unsigned char>(static_cast<unsigned char>(a[i]) ^ other);
  }
  return diff == 0;
}

std::shared_ptr<AdminAuth> AdminAuth::from_file(const std::string& path, std::string* error) {
  std::shared_ptr<AdminAuth> a(new AdminAuth());
  a->path_ = path;
  std::string token;
  *error = read_token_file(path, &token);
  if (!error->empty()) return nullptr;
  a->token_ = std::move(token);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    a->mtime_ns_ = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    a->size_ = static_cast<int64_t>(st.st_size);
  }
  a->next_stat_ = std::chrono::steady_clock::now() + kStatInterval;
  return a;
}

std::shared_ptr<AdminAuth> AdminAuth::with_token(std::string token) {
  std::shared_ptr<AdminAuth> a(new AdminAuth());
  a->token_ = std::move(token);
  return a;
}

std::shared_ptr<AdminAuth> AdminAuth::insecure() {
  std::shared_ptr<AdminAuth> a(new AdminAuth());
  a->insecure_ = true;
  return a;
}

void AdminAuth::maybe_reload() {
  // Called with mu_ held.
  if (path_.empty()) return;
  auto now = std::chrono::steady_clock::now();
  if (now < next_stat_) return;
  next_stat_ = now + kStatInterval;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return;  // keep the last good token
  int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (mtime == mtime_ns_ && static_cast<int64_t>(st.st_size) == size_) return;
  std::string token;
  std::string err = read_token_file(path_, &token);
  if (!err.empty()) {
    log::warn("admin_token_reload_failed").kv("file", path_).kv("error", err);
    return;
  }
  mtime_ns_ = mtime;
  size_ = static_cast<int64_t>(st.st_size);
  if (token != token_) log::info("admin_token_reloaded").kv("file", path_);
  token_ = std::move(token);
}

std::string AdminAuth::token() {
  std::lock_guard<std::mutex> lock(mu_);
  maybe_reload();
  return token_;
}

grpc::Status AdminAuth::check(const grpc::ServerContextBase& ctx, std::string_view method) {
  if (insecure_) return grpc::Status::OK;
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return fail(ctx, method, AuthFailure::kMissing, "no authorization metadata");
  std::string_view value(it->second.data(), it->second.size());
  if (value.size() < kBearer.size() || !std::equal(kBearer.begin(), kBearer.end(), value.begin(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
      }))
    return fail(ctx, method, AuthFailure::kInvalid, "not a bearer token");
  value.remove_prefix(kBearer.size());
  bool ok = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    maybe_reload();
    ok = constant_time_equal(token_, value);
  }
  if (!ok) return fail(ctx, method, AuthFailure::kInvalid, "wrong token");
  return grpc::Status::OK;
}

grpc::Status AdminAuth::refuse(const grpc::ServerContextBase& ctx, std::string_view method) {
  return fail(ctx, method, AuthFailure::kMissing, "no admin token configured");
}

std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> bearer_interceptors(
    const std::string& token) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> v;
  if (!token.empty()) v.push_back(std::make_unique<BearerFactory>(token));
  return v;
}

}  // namespace doorman::directory::auth
