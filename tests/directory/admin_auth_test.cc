// Admin API authentication (issue #7): bearer tokens checked in-process on a
// loopback server with a real redis-server; the token file and its reload;
// the separate admin listener. doormanctl's side is in doormanctl_test.cc.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "directory/auth/admin_auth.h"
#include "directory/metrics.h"
#include "directory/service/server.h"
#include "tests/support/process.h"
#include "tests/support/redis_server.h"

namespace doorman::directory {
namespace {

namespace v1 = doorman::v1;
using namespace std::chrono_literals;

std::shared_ptr<grpc::Channel> channel(int port, const std::string& token) {
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), grpc::ChannelArguments(),
      auth::bearer_interceptors(token));
}

grpc::Status list_domains(int port, const std::string& token) {
  auto stub = v1::AdminService::NewStub(channel(port, token));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::ListDomainsRequest req;
  v1::ListDomainsResponse resp;
  return stub->ListDomains(&ctx, req, &resp);
}

class AdminAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(redis_.start()) << redis_.error();
    store::RedisPool::Settings ps;
    ps.redis.port = redis_.port();
    ps.redis.timeout = 500ms;
    ps.connections = 2;
    pool_ = std::make_unique<store::RedisPool>(ps);
    pool_->start();
  }
  void TearDown() override {
    if (server_) {
      server_->shutdown(100ms);
      server_->wait();
    }
    pool_->stop();
  }
  void serve(std::shared_ptr<auth::AdminAuth> a, const std::string& admin_listen = "") {
    service::Server::Options so;
    so.auth = std::move(a);
    so.admin_listen = admin_listen;
    server_ = std::make_unique<service::Server>(*pool_, nullptr, so);
    ASSERT_EQ(server_->start("127.0.0.1:0"), "");
  }
  uint64_t failures(AuthFailure r) { return directory_metrics().admin_auth_failures(r).value(); }

  test::RedisServer redis_;
  std::unique_ptr<store::RedisPool> pool_;
  std::unique_ptr<service::Server> server_;
};

TEST(AdminAuthUnit, ConstantTimeEqual) {
  EXPECT_TRUE(auth::constant_time_equal("secret", "secret"));
  EXPECT_FALSE(auth::constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(auth::constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(auth::constant_time_equal("secret", ""));
  EXPECT_FALSE(auth::constant_time_equal("secret", "secretsecret"));  // wraps, still unequal by length
}

TEST_F(AdminAuthTest, MissingOrWrongTokenIsUnauthenticatedAndCounted) {
  serve(auth::AdminAuth::with_token("right-token"));
  const uint64_t missing = failures(AuthFailure::kMissing), invalid = failures(AuthFailure::kInvalid);
  EXPECT_EQ(list_domains(server_->port(), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(failures(AuthFailure::kMissing) - missing, 1u);
  EXPECT_EQ(list_domains(server_->port(), "wrong-token").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list_domains(server_->port(), "right-token-").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(failures(AuthFailure::kInvalid) - invalid, 2u);
  // Not a bearer token at all.
  {
    auto stub = v1::AdminService::NewStub(channel(server_->port(), ""));
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Basic cmlnaHQtdG9rZW4=");
    v1::ListDomainsResponse resp;
    EXPECT_EQ(stub->ListDomains(&ctx, v1::ListDomainsRequest(), &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_TRUE(list_domains(server_->port(), "right-token").ok());
  // The admin request counter sees the refusals too.
  EXPECT_GE(metrics::global()
                .counter("doorman_directory_admin_requests_total", "AdminService calls by RPC and gRPC status code.",
                         {{"method", "ListDomains"}, {"code", "UNAUTHENTICATED"}})
                .value(),
            3u);
}

TEST_F(AdminAuthTest, StreamsAreRefusedWithoutToken) {
  serve(auth::AdminAuth::with_token("right-token"));
  auto stub = v1::AdminService::NewStub(channel(server_->port(), ""));
  grpc::ClientContext ctx;
  v1::ImportResponse resp;
  auto writer = stub->ImportAddresses(&ctx, &resp);
  v1::ImportChunk chunk;
  chunk.add_addresses("a@example.com");
  writer->Write(chunk);
  writer->WritesDone();
  EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AdminAuthTest, CheckRecipientsAndHealthNeedNoToken) {
  serve(auth::AdminAuth::with_token("right-token"));
  auto stub = v1::RecipientService::NewStub(channel(server_->port(), ""));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 5s);
  v1::CheckRecipientsRequest req;
  req.add_recipients("someone@not-guarded.test");
  v1::CheckRecipientsResponse resp;
  grpc::Status s = stub->CheckRecipients(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.verdicts_size(), 1);
}

TEST_F(AdminAuthTest, NoAuthConfiguredRefusesEveryAdminCall) {
  serve(nullptr);
  EXPECT_EQ(list_domains(server_->port(), "").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(list_domains(server_->port(), "anything").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(AdminAuthTest, InsecureAcceptsEveryCall) {
  serve(auth::AdminAuth::insecure());
  EXPECT_TRUE(list_domains(server_->port(), "").ok());
}

TEST_F(AdminAuthTest, InProcessChannelCarriesTheToken) {
  serve(auth::AdminAuth::with_token("right-token"));
  auto stub = v1::AdminService::NewStub(server_->in_process_channel());
  grpc::ClientContext ctx;
  v1::ListDomainsResponse resp;
  EXPECT_TRUE(stub->ListDomains(&ctx, v1::ListDomainsRequest(), &resp).ok());
}

TEST_F(AdminAuthTest, TokenFileIsReadAndReReadWhenItChanges) {
  std::string dir = test::make_temp_dir("doorman-auth");
  std::string path = dir + "/token";
  std::ofstream(path) << "first-token\r\n";
  std::string err;
  auto a = auth::AdminAuth::from_file(path, &err);
  ASSERT_TRUE(a) << err;
  serve(a);
  EXPECT_TRUE(list_domains(server_->port(), "first-token").ok());
  std::this_thread::sleep_for(20ms);  // a different mtime
  std::ofstream(path) << "second-token-longer\n";
  bool switched = false;
  for (int i = 0; i < 40 && !switched; ++i) {
    switched = list_domains(server_->port(), "second-token-longer").ok();
    if (!switched) std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(switched);
  EXPECT_EQ(list_domains(server_->port(), "first-token").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // An empty file keeps the last good token.
  std::ofstream(path) << "";
  std::this_thread::sleep_for(1100ms);
  EXPECT_TRUE(list_domains(server_->port(), "second-token-longer").ok());
  EXPECT_FALSE(auth::AdminAuth::from_file(dir + "/absent", &err));
  EXPECT_NE(err.find("cannot read"), std::string::npos);
  EXPECT_EQ(err.find("token\n"), std::string::npos);
  test::remove_tree(dir);
}

TEST_F(AdminAuthTest, SeparateAdminListenerServesOnlyAdmin) {
  serve(auth::AdminAuth::with_token("right-token"), "127.0.0.1:0");
  ASSERT_NE(server_->admin_port(), server_->port());
  EXPECT_TRUE(list_domains(server_->admin_port(), "right-token").ok());
  // Not on the recipient listener.
  EXPECT_EQ(list_domains(server_->port(), "right-token").error_code(), grpc::StatusCode::UNIMPLEMENTED);
  // And CheckRecipients is not on the admin listener.
  auto stub = v1::RecipientService::NewStub(channel(server_->admin_port(), ""));
  grpc::ClientContext ctx;
  v1::CheckRecipientsRequest req;
  req.add_recipients("a@b.test");
  v1::CheckRecipientsResponse resp;
  EXPECT_EQ(stub->CheckRecipients(&ctx, req, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  auto in_process = v1::AdminService::NewStub(server_->in_process_channel());
  grpc::ClientContext ctx2;
  v1::ListDomainsResponse domains;
  EXPECT_TRUE(in_process->ListDomains(&ctx2, v1::ListDomainsRequest(), &domains).ok());
}

}  // namespace
}  // namespace doorman::directory
