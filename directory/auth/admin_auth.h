// Bearer-token authentication of the directory's AdminService (issue #7).
//
// Server side: AdminAuth holds the expected token, read from a file (a
// mounted Kubernetes Secret; the first line, trailing blanks and CR cut) and
// re-read when the file's modification time or size changes (checked at most
// once a second, on a call), so a rotated Secret takes effect without a
// restart; a file that becomes unreadable or empty keeps the last good token.
// check() is called at the top of every AdminService handler (one helper,
// service/admin_service.cc): the call's `authorization` metadata must be
// "Bearer <token>"; the comparison takes the same time whatever the
// presented value. Failures are UNAUTHENTICATED, logged (peer, RPC, reason;
// never the presented or expected token) and counted in
// doorman_directory_admin_auth_failures_total{reason}.
//
// A null AdminAuth (the Server's default) refuses every admin call; the
// insecure one (--admin-insecure, an explicit opt-out) accepts every call.
//
// Client side: bearer_interceptors() adds the header to every call of a
// channel (doormanctl, the in-process channel of --apply).
//
// SECURITY: sees untrusted metadata from any gRPC client of the admin
// listener; it only compares it, bounded by gRPC's metadata size limit.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace doorman::directory::auth {

// Reads the token file: "" and *token, or an error message (without the
// token). An empty first line is an error.
std::string read_token_file(const std::string& path, std::string* token);

// Equal in time that depends on the lengths only, not on where they differ.
bool constant_time_equal(std::string_view a, std::string_view b);

class AdminAuth {
 public:
  // Token from `path`; nullptr and *error when it cannot be read.
  static std::shared_ptr<AdminAuth> from_file(const std::string& path, std::string* error);
  // A fixed token (tests, in-process use).
  static std::shared_ptr<AdminAuth> with_token(std::string token);
  // Accepts every call (--admin-insecure).
  static std::shared_ptr<AdminAuth> insecure();

  bool is_insecure() const { return insecure_; }

  // OK, or UNAUTHENTICATED (logged and counted). `method` is the RPC name.
  grpc::Status check(const grpc::ServerContextBase& ctx, std::string_view method);

  // The current token ("" when insecure), for the in-process channel.
  std::string token();

  // Refuses every call: what a Server without AdminAuth does.
  static grpc::Status refuse(const grpc::ServerContextBase& ctx, std::string_view method);

 private:
  AdminAuth() = default;
  void maybe_reload();

  bool insecure_ = false;
  std::string path_;
  std::mutex mu_;
  std::string token_;
  int64_t mtime_ns_ = 0;
  int64_t size_ = -1;
  std::chrono::steady_clock::time_point next_stat_{};
};

// Interceptors for grpc::experimental::CreateCustomChannelWithInterceptors:
// "authorization: Bearer <token>" on every call; none when `token` is empty.
std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> bearer_interceptors(
    const std::string& token);

}  // namespace doorman::directory::auth
