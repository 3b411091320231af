// doorman.v1.AdminService: guarded domains, their address lists, Explain.
//
// Talks to operators (doormanctl) over gRPC; inputs are validated here:
// domain names (smtp::is_valid_domain, lower-cased), routes ("host:port",
// port 1..65535), modes (required on create), addresses (smtp::parse_mailbox,
// must be of a guarded domain; errors per address, nothing written for
// those). Handlers never block: each submits a job to the Redis pool, which
// finishes the RPC. Errors are gRPC codes: INVALID_ARGUMENT, NOT_FOUND,
// ALREADY_EXISTS, UNAVAILABLE (Redis trouble; safe to retry).
//
// The callout cache (issue #4): GetCalloutEntry shows an address's cached
// result (result, age, expiry, refresh, back-end, reply), ForgetCalloutEntry
// deletes it (the next check probes again: the remedy for a mailbox created
// after a negative answer), FlushCalloutCache deletes a domain's results and
// its catch-all status. Addresses are normalised as for checks.
//
// The LDAP sync (issue #14): Put/Delete/ListSyncSources keep the sources
// (validated by sync::validate_source), GetSyncStatus reads the records the
// syncing replica wrote, RunSync records a request for the lease holder
// (any replica may answer; none of these waits for LDAP).
//
// Every handler first calls authorize() (auth/admin_auth.h): without a
// valid bearer token the call ends UNAUTHENTICATED before any work.
//
// Import and Replace are client streams: each chunk is written with one
// pipelined round trip before the next is read, so memory is bounded by one
// chunk (at most kMaxChunk addresses). Replace writes into a temp set and
// RENAMEs it over the list at the end; if any address was invalid, or the
// stream breaks, nothing is replaced.
#pragma once

#include <memory>
#include <string_view>

#include "directory/auth/admin_auth.h"
#include "directory/callout/callout.h"
#include "directory/harvest/harvest.h"
#include "directory/store/pool.h"
#include "doorman/v1/admin.grpc.pb.h"

namespace doorman::directory::service {

inline constexpr int kMaxAddressesPerCall = 10000;
inline constexpr int kMaxChunk = 10000;
inline constexpr uint32_t kDefaultPageSize = 1000;
inline constexpr uint32_t kMaxPageSize = 10000;
inline constexpr size_t kMaxReportedErrors = 100;

class AdminService final : public doorman::v1::AdminService::CallbackService {
 public:
  // `auth` null: every call is refused with UNAUTHENTICATED (secure default).
  explicit AdminService(store::RedisPool& pool, callout::Callout* callout = nullptr,
                        std::shared_ptr<auth::AdminAuth> auth = nullptr,
                        std::shared_ptr<harvest::Harvest> harvest = nullptr, std::string postmaster_domain = "")
      : pool_(pool),
        callout_(callout),
        auth_(std::move(auth)),
        harvest_(std::move(harvest)),
        postmaster_domain_(std::move(postmaster_domain)) {}
  // Keep the generated synchronous overloads visible (-Woverloaded-virtual).
  using doorman::v1::AdminService::CallbackService::CreateDomain;
  using doorman::v1::AdminService::CallbackService::UpdateDomain;
  using doorman::v1::AdminService::CallbackService::MarkConfigured;
  using doorman::v1::AdminService::CallbackService::GetDomain;
  using doorman::v1::AdminService::CallbackService::DeleteDomain;
  using doorman::v1::AdminService::CallbackService::ListDomains;
  using doorman::v1::AdminService::CallbackService::AddAddresses;
  using doorman::v1::AdminService::CallbackService::RemoveAddresses;
  using doorman::v1::AdminService::CallbackService::ListAddresses;
  using doorman::v1::AdminService::CallbackService::CountAddresses;
  using doorman::v1::AdminService::CallbackService::GetStats;
  using doorman::v1::AdminService::CallbackService::ImportAddresses;
  using doorman::v1::AdminService::CallbackService::ReplaceAddresses;
  using doorman::v1::AdminService::CallbackService::Explain;
  using doorman::v1::AdminService::CallbackService::GetCalloutEntry;
  using doorman::v1::AdminService::CallbackService::ForgetCalloutEntry;
  using doorman::v1::AdminService::CallbackService::FlushCalloutCache;
  using doorman::v1::AdminService::CallbackService::PutSyncSource;
  using doorman::v1::AdminService::CallbackService::DeleteSyncSource;
  using doorman::v1::AdminService::CallbackService::ListSyncSources;
  using doorman::v1::AdminService::CallbackService::GetSyncStatus;
  using doorman::v1::AdminService::CallbackService::RunSync;

  using Ctx = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;

  Reactor* CreateDomain(Ctx* ctx, const doorman::v1::CreateDomainRequest* req, doorman::v1::Domain* resp) override;
  Reactor* UpdateDomain(Ctx* ctx, const doorman::v1::UpdateDomainRequest* req, doorman::v1::Domain* resp) override;
  Reactor* MarkConfigured(Ctx* ctx, const doorman::v1::MarkConfiguredRequest* req,
                          doorman::v1::MarkConfiguredResponse* resp) override;
  Reactor* GetDomain(Ctx* ctx, const doorman::v1::GetDomainRequest* req, doorman::v1::Domain* resp) override;
  Reactor* DeleteDomain(Ctx* ctx, const doorman::v1::DeleteDomainRequest* req,
                        doorman::v1::DeleteDomainResponse* resp) override;
  Reactor* ListDomains(Ctx* ctx, const doorman::v1::ListDomainsRequest* req,
                       doorman::v1::ListDomainsResponse* resp) override;
  Reactor* AddAddresses(Ctx* ctx, const doorman::v1::AddressesRequest* req,
                        doorman::v1::AddressesResponse* resp) override;
  Reactor* RemoveAddresses(Ctx* ctx, const doorman::v1::AddressesRequest* req,
                           doorman::v1::AddressesResponse* resp) override;
  Reactor* ListAddresses(Ctx* ctx, const doorman::v1::ListAddressesRequest* req,
                         doorman::v1::ListAddressesResponse* resp) override;
  Reactor* CountAddresses(Ctx* ctx, const doorman::v1::CountAddressesRequest* req,
                          doorman::v1::CountAddressesResponse* resp) override;
  Reactor* GetStats(Ctx* ctx, const doorman::v1::GetStatsRequest* req, doorman::v1::Stats* resp) override;
  grpc::ServerReadReactor<doorman::v1::ImportChunk>* ImportAddresses(Ctx* ctx,
                                                                      doorman::v1::ImportResponse* resp) override;
  grpc::ServerReadReactor<doorman::v1::ImportChunk>* ReplaceAddresses(Ctx* ctx,
                                                                       doorman::v1::ImportResponse* resp) override;
  Reactor* Explain(Ctx* ctx, const doorman::v1::ExplainRequest* req, doorman::v1::ExplainResponse* resp) override;
  Reactor* GetCalloutEntry(Ctx* ctx, const doorman::v1::CalloutAddressRequest* req,
                           doorman::v1::CalloutEntry* resp) override;
  Reactor* ForgetCalloutEntry(Ctx* ctx, const doorman::v1::CalloutAddressRequest* req,
                              doorman::v1::ForgetCalloutResponse* resp) override;
  Reactor* FlushCalloutCache(Ctx* ctx, const doorman::v1::FlushCalloutRequest* req,
                             doorman::v1::FlushCalloutResponse* resp) override;
  // LDAP sync (issue #14; directory/sync/): sources, their records, run now.
  Reactor* PutSyncSource(Ctx* ctx, const doorman::v1::LdapSource* req, doorman::v1::LdapSource* resp) override;
  Reactor* DeleteSyncSource(Ctx* ctx, const doorman::v1::DeleteSyncSourceRequest* req,
                            doorman::v1::DeleteSyncSourceResponse* resp) override;
  Reactor* ListSyncSources(Ctx* ctx, const doorman::v1::ListSyncSourcesRequest* req,
                           doorman::v1::ListSyncSourcesResponse* resp) override;
  Reactor* GetSyncStatus(Ctx* ctx, const doorman::v1::GetSyncStatusRequest* req,
                         doorman::v1::GetSyncStatusResponse* resp) override;
  Reactor* RunSync(Ctx* ctx, const doorman::v1::RunSyncRequest* req, doorman::v1::RunSyncResponse* resp) override;

 private:
  // Domain.rejecting_unknown (rejection.h).
  void add_rejection_verdict(doorman::v1::Domain* d);
  grpc::Status authorize(const grpc::ServerContextBase& ctx, std::string_view method);
  // nullptr when authorized, else a reactor finished with UNAUTHENTICATED.
  Reactor* refuse_unauthenticated(Ctx* ctx, std::string_view method);

  store::RedisPool& pool_;
  callout::Callout* callout_;
  std::shared_ptr<auth::AdminAuth> auth_;
  std::shared_ptr<harvest::Harvest> harvest_;
  std::string postmaster_domain_;  // for a bare <postmaster> in Explain
};

}  // namespace doorman::directory::service
