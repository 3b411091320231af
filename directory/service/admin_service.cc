#include "directory/service/admin_service.h"

#include <atomic>
#include <random>

#include "common/log.h"
#include "directory/metrics.h"
#include "directory/service/grpc_status.h"
#include "directory/service/recipient_service.h"
#include "directory/service/rejection.h"
#include "directory/store/normalise.h"
#include "directory/store/callout_cache.h"
#include "directory/store/stats.h"
#include "directory/store/store.h"
#include "directory/store/sync_state.h"
#include "directory/sync/source.h"

namespace doorman::directory::service {
namespace {

using store::RedisConn;
namespace v1 = doorman::v1;

// Whether a job for a call with this deadline starts too late: the caller
// has gone, so it does no Redis work (counted, DEADLINE_EXCEEDED).
bool expired_before_start(std::chrono::system_clock::time_point deadline, grpc::ServerUnaryReactor* reactor) {
  if (std::chrono::system_clock::now() < deadline) return false;
  directory_metrics().expired_jobs(JobKind::kAdmin).inc();
  reactor->Finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed before the job ran"));
  return true;
}

// Submits `work` (RedisConn& -> Status) and finishes the RPC with its status.
template <class F>
grpc::ServerUnaryReactor* run(store::RedisPool& pool, grpc::CallbackServerContext* ctx, F work) {
  auto* reactor = ctx->DefaultReactor();
  bool queued = pool.submit([reactor, deadline = ctx->deadline(), work = std::move(work)](RedisConn& conn) mutable {
    if (expired_before_start(deadline, reactor)) return;
    reactor->Finish(to_grpc(work(conn)));
  });
  if (!queued) reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "directory busy or stopping"));
  return reactor;
}

// The same for a write: once `work` succeeded, one replica must have the
// change (store::confirm_replicated) before the call answers OK.
template <class F>
grpc::ServerUnaryReactor* run_write(store::RedisPool& pool, grpc::CallbackServerContext* ctx, F work) {
  return run(pool, ctx, [work = std::move(work)](RedisConn& conn) mutable {
    Status s = work(conn);
    return s.ok() ? store::confirm_replicated(conn) : s;
  });
}

grpc::ServerUnaryReactor* fail(grpc::CallbackServerContext* ctx, grpc::StatusCode code, const std::string& msg) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status(code, msg));
  return reactor;
}

// A client stream refused before its first read.
class DeniedStream final : public grpc::ServerReadReactor<v1::ImportChunk> {
 public:
  explicit DeniedStream(const grpc::Status& s) { Finish(s); }
  void OnDone() override { delete this; }
};

Status invalid(std::string msg) { return Status::Error(Code::kInvalidArgument, std::move(msg)); }

// Validates and normalises a Domain message in place. `create` requires a mode.
Status validate_domain(v1::Domain* d, bool create) {
  std::string name;
  std::string err = store::normalise_domain_name(d->name(), &name);
  if (!err.empty()) return invalid(err);
  d->set_name(name);
  if (create && d->mode() == v1::DOMAIN_MODE_UNSPECIFIED) return invalid("mode is required");
  if (!v1::DomainMode_IsValid(d->mode())) return invalid("unknown mode");
  if (create && d->routes_size() == 0) return invalid("at least one route (host:port) is required");
  for (const auto& r : d->routes()) {
    err = store::validate_route(r);
    if (!err.empty()) return invalid(err);
  }
  if (!v1::CatchAllPolicy_IsValid(d->catch_all_policy())) return invalid("unknown catch_all_policy");
  if (d->has_callout_sender() && !d->callout_sender().empty() && !smtp::parse_mailbox(d->callout_sender()).ok())
    return invalid("callout_sender must be an address local@domain, or empty for <>");
  d->clear_catch_all();
  d->clear_shadow();  // output only
  d->clear_ldap_sync_pending();  // output only
  d->clear_rejecting_unknown();  // output only
  d->clear_ldap_sources();  // output only
  if (d->has_subaddress_separator()) {
    const std::string& s = d->subaddress_separator();
    if (s.size() > 1 || s == "@" || s == "\"" || s == "\\" || (s.size() == 1 && (s[0] <= ' ' || s[0] > '~')))
      return invalid("subaddress_separator must be one printable character (not @, quote or backslash) or empty");
  }
  d->set_address_count(0);
  return Status::Ok();
}

Status domain_name(const std::string& in, std::string* out) {
  std::string err = store::normalise_domain_name(in, out);
  return err.empty() ? Status::Ok() : invalid(err);
}

void fill_batch(const store::BatchResult& b, v1::AddressesResponse* resp) {
  resp->set_changed(b.changed);
  resp->set_unchanged(b.unchanged);
  for (const auto& e : b.errors) {
    auto* x = resp->add_errors();
    x->set_address(e.address);
    x->set_error(e.error);
  }
}

std::string nonce() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = std::random_device{}();
  return std::to_string(seed) + "-" + std::to_string(++counter);
}

// Import and Replace: one chunk in flight at a time. OnReadDone submits the
// chunk to the pool; the job writes it and starts the next read, or
// finishes the RPC.
class ImportReactor final : public grpc::ServerReadReactor<v1::ImportChunk> {
 public:
  ImportReactor(store::RedisPool& pool, v1::ImportResponse* resp, bool replace)
      : pool_(pool), resp_(resp), replace_(replace) {
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    bool queued = pool_.submit([this, ok](RedisConn& conn) {
      if (ok) on_chunk(conn);
      else on_end(conn);
    });
    if (!queued) Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "directory busy or stopping"));
  }

  void OnDone() override {
    if (replace_ && !tmp_key_.empty() && !committed_) {
      std::string key = tmp_key_;
      pool_.submit([key](RedisConn& conn) { (void)store::replace_abort(conn, key); });
    }
    delete this;
  }

 private:
  void on_chunk(RedisConn& conn) {
    if (chunk_.addresses_size() > kMaxChunk) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "a chunk holds at most " + std::to_string(kMaxChunk) + " addresses"));
      return;
    }
    if (replace_ && target_.key.empty()) {
      std::string name;
      Status s = domain_name(chunk_.domain(), &name);
      if (s.ok()) {
        target_.only_domain = name;
        hold_marker_ = chunk_.hold_marker();
        dry_run_ = chunk_.dry_run();
        tmp_key_ = store::replace_key(name, nonce());
        s = store::replace_begin(conn, name, tmp_key_);
      }
      if (!s.ok()) {
        tmp_key_.clear();
        Finish(to_grpc(s));
        return;
      }
      target_.key = tmp_key_;
    }
    std::vector<std::string> addresses(chunk_.addresses().begin(), chunk_.addresses().end());
    size_t errors_before = batch_.errors.size();
    Status s = store::write_addresses(conn, addresses, target_, &cache_, &batch_);
    // An import chunk is live at once: one replica must have it before the
    // next is read (WAIT covers this connection's writes only). A replace
    // waits once, for its commit, which follows every chunk in the
    // replication stream.
    if (s.ok() && !replace_) s = store::confirm_replicated(conn);
    // Keep the first errors only; count them all.
    error_count_ += batch_.errors.size() - errors_before;
    if (batch_.errors.size() > kMaxReportedErrors) batch_.errors.resize(kMaxReportedErrors);
    if (!s.ok()) {
      grpc::Status g = to_grpc(s);
      std::string written = replace_ ? "nothing replaced" : std::to_string(batch_.changed) + " addresses were added";
      Finish(grpc::Status(g.error_code(), g.error_message() + " (" + written + ")"));
      return;
    }
    StartRead(&chunk_);
  }

  void on_end(RedisConn& conn) {
    resp_->set_received(batch_.received);
    resp_->set_error_count(error_count_);
    for (const auto& e : batch_.errors) {
      auto* x = resp_->add_errors();
      x->set_address(e.address);
      x->set_error(e.error);
    }
    if (!replace_) {
      resp_->set_added(batch_.changed);
      resp_->set_unchanged(batch_.unchanged);
      log::info("import").kv("received", batch_.received).kv("added", batch_.changed).kv("errors", error_count_);
      Finish(grpc::Status::OK);
      return;
    }
    if (tmp_key_.empty()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "empty stream: the first chunk must name the domain"));
      return;
    }
    if (dry_run_) {
      dry_run(conn);
      return;
    }
    if (error_count_ > 0) {
      std::string first = batch_.errors.empty() ? "" : ": " + batch_.errors[0].address + ": " + batch_.errors[0].error;
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::to_string(error_count_) + " invalid addresses, nothing replaced" + first));
      return;
    }
    store::ReplaceCounts counts;
    Status s = store::replace_commit(conn, target_.only_domain, tmp_key_, &counts, !hold_marker_);
    if (s.ok()) {
      committed_ = true;
      s = store::confirm_replicated(conn);
    }
    if (!s.ok()) {
      Finish(to_grpc(s));
      return;
    }
    committed_ = true;
    resp_->set_added(counts.added);
    resp_->set_removed(counts.removed);
    resp_->set_unchanged(counts.unchanged);
    log::info("replace").kv("domain", target_.only_domain).kv("received", batch_.received)
        .kv("added", counts.added).kv("removed", counts.removed);
    Finish(grpc::Status::OK);
  }

  // The counts replace_commit would act on, then the temp set goes: the
  // live list and the marker are never touched. Malformed lines are in the
  // response, not a refusal: the caller is asking what would happen.
  void dry_run(RedisConn& conn) {
    store::ReplaceCounts counts;
    Status s = store::replace_count(conn, target_.only_domain, tmp_key_, &counts);
    Status cleanup = store::replace_abort(conn, tmp_key_);
    if (cleanup.ok()) tmp_key_.clear();  // else OnDone tries again
    if (!s.ok()) {
      Finish(to_grpc(s));
      return;
    }
    resp_->set_dry_run(true);
    resp_->set_added(counts.added);
    resp_->set_removed(counts.removed);
    resp_->set_unchanged(counts.unchanged);
    log::info("replace_dry_run").kv("domain", target_.only_domain).kv("received", batch_.received)
        .kv("added", counts.added).kv("removed", counts.removed).kv("errors", error_count_);
    Finish(grpc::Status::OK);
  }

  store::RedisPool& pool_;
  v1::ImportResponse* resp_;
  bool replace_;
  v1::ImportChunk chunk_;
  store::WriteTarget target_;
  store::DomainCache cache_;
  store::BatchResult batch_;
  uint64_t error_count_ = 0;
  std::string tmp_key_;
  bool hold_marker_ = false;  // from the first chunk
  bool dry_run_ = false;      // from the first chunk
  bool committed_ = false;
};

}  // namespace

// The one place admin calls are authenticated (auth/admin_auth.h).
grpc::Status AdminService::authorize(const grpc::ServerContextBase& ctx, std::string_view method) {
  if (!auth_) return auth::AdminAuth::refuse(ctx, method);
  return auth_->check(ctx, method);
}

grpc::ServerUnaryReactor* AdminService::refuse_unauthenticated(Ctx* ctx, std::string_view method) {
  grpc::Status s = authorize(*ctx, method);
  if (s.ok()) return nullptr;
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(s);
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::CreateDomain(Ctx* ctx, const v1::CreateDomainRequest* req, v1::Domain* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "CreateDomain")) return denied;
  return run_write(pool_, ctx, [req, resp](RedisConn& conn) {
    v1::Domain d = req->domain();
    Status s = validate_domain(&d, true);
    if (!s.ok()) return s;
    if (!d.has_subaddress_separator()) d.set_subaddress_separator(std::string(store::kDefaultSeparator));
    if (d.catch_all_policy() == v1::CATCH_ALL_POLICY_UNSPECIFIED) d.set_catch_all_policy(v1::CATCH_ALL_POLICY_ACCEPT);
    if (!d.has_callout_sender()) d.set_callout_sender("");
    if (!d.has_callout_fallback()) d.set_callout_fallback(false);
    if (!d.has_allow_routing_local_parts()) d.set_allow_routing_local_parts(false);
    if (!d.has_enforce()) d.set_enforce(true);
    s = store::create_domain(conn, d, !req->hold_marker());
    if (!s.ok()) return s;
    log::info("domain_created").kv("domain", d.name()).kv("mode", store::mode_name(d.mode()))
        .kv("enforce", d.enforce());
    *resp = d;
    // Shadow mode: the response shows when its count began.
    if (!d.enforce() && !store::get_domain(conn, d.name(), resp).ok()) *resp = d;
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::UpdateDomain(Ctx* ctx, const v1::UpdateDomainRequest* req, v1::Domain* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "UpdateDomain")) return denied;
  return run_write(pool_, ctx, [req, resp](RedisConn& conn) {
    v1::Domain d = req->domain();
    Status s = validate_domain(&d, false);
    if (!s.ok()) return s;
    s = store::update_domain(conn, d, resp, !req->hold_marker());
    if (s.ok())
      log::info("domain_updated").kv("domain", d.name()).kv("mode", store::mode_name(resp->mode()))
          .kv("enforce", store::enforcing(*resp));
    return s;
  });
}

grpc::ServerUnaryReactor* AdminService::MarkConfigured(Ctx* ctx, const v1::MarkConfiguredRequest*,
                                                       v1::MarkConfiguredResponse*) {
  if (auto* denied = refuse_unauthenticated(ctx, "MarkConfigured")) return denied;
  return run_write(pool_, ctx, [](RedisConn& conn) {
    Status s = store::mark_configured(conn);
    if (s.ok()) log::info("store_marked_configured");
    return s;
  });
}

void AdminService::add_rejection_verdict(v1::Domain* d) {
  *d->mutable_rejecting_unknown() = rejection_verdict(*d, callout_ ? callout_->unreachable(d->name()) : "");
}

grpc::ServerUnaryReactor* AdminService::GetDomain(Ctx* ctx, const v1::GetDomainRequest* req, v1::Domain* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "GetDomain")) return denied;
  return run(pool_, ctx, [this, req, resp](RedisConn& conn) {
    std::string name;
    Status s = domain_name(req->name(), &name);
    if (!s.ok()) return s;
    s = store::get_domain(conn, name, resp);
    if (s.ok()) add_rejection_verdict(resp);
    return s;
  });
}

grpc::ServerUnaryReactor* AdminService::DeleteDomain(Ctx* ctx, const v1::DeleteDomainRequest* req,
                                                     v1::DeleteDomainResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "DeleteDomain")) return denied;
  return run_write(pool_, ctx, [req, resp](RedisConn& conn) {
    std::string name;
    Status s = domain_name(req->name(), &name);
    if (!s.ok()) return s;
    uint64_t removed = 0;
    s = store::delete_domain(conn, name, &removed);
    if (!s.ok()) return s;
    resp->set_addresses_removed(removed);
    log::info("domain_deleted").kv("domain", name).kv("addresses_removed", removed);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::ListDomains(Ctx* ctx, const v1::ListDomainsRequest*,
                                                    v1::ListDomainsResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "ListDomains")) return denied;
  return run(pool_, ctx, [this, resp](RedisConn& conn) {
    std::vector<v1::Domain> domains;
    Status s = store::list_domains(conn, &domains);
    for (auto& d : domains) {
      add_rejection_verdict(&d);
      *resp->add_domains() = std::move(d);
    }
    return s;
  });
}

grpc::ServerUnaryReactor* AdminService::AddAddresses(Ctx* ctx, const v1::AddressesRequest* req,
                                                     v1::AddressesResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "AddAddresses")) return denied;
  if (req->addresses_size() > kMaxAddressesPerCall)
    return fail(ctx, grpc::StatusCode::INVALID_ARGUMENT,
                "at most " + std::to_string(kMaxAddressesPerCall) + " addresses per call; use ImportAddresses");
  return run_write(pool_, ctx, [req, resp](RedisConn& conn) {
    std::vector<std::string> addresses(req->addresses().begin(), req->addresses().end());
    store::DomainCache cache;
    store::BatchResult b;
    Status s = store::write_addresses(conn, addresses, {store::WriteOp::kAdd, "", ""}, &cache, &b);
    if (s.ok()) fill_batch(b, resp);
    return s;
  });
}

grpc::ServerUnaryReactor* AdminService::RemoveAddresses(Ctx* ctx, const v1::AddressesRequest* req,
                                                        v1::AddressesResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "RemoveAddresses")) return denied;
  if (req->addresses_size() > kMaxAddressesPerCall)
    return fail(ctx, grpc::StatusCode::INVALID_ARGUMENT,
                "at most " + std::to_string(kMaxAddressesPerCall) + " addresses per call");
  return run_write(pool_, ctx, [req, resp](RedisConn& conn) {
    std::vector<std::string> addresses(req->addresses().begin(), req->addresses().end());
    store::DomainCache cache;
    store::BatchResult b;
    Status s = store::write_addresses(conn, addresses, {store::WriteOp::kRemove, "", ""}, &cache, &b);
    if (s.ok()) fill_batch(b, resp);
    return s;
  });
}

grpc::ServerUnaryReactor* AdminService::ListAddresses(Ctx* ctx, const v1::ListAddressesRequest* req,
                                                      v1::ListAddressesResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "ListAddresses")) return denied;
  return run(pool_, ctx, [req, resp](RedisConn& conn) {
    std::string name;
    Status s = domain_name(req->domain(), &name);
    if (!s.ok()) return s;
    uint32_t size = req->page_size() == 0 ? kDefaultPageSize : std::min(req->page_size(), kMaxPageSize);
    std::vector<std::string> out;
    std::string next;
    s = store::list_addresses(conn, name, size, req->page_token(), &out, &next, req->prefix());
    if (!s.ok()) return s;
    for (auto& a : out) resp->add_addresses(std::move(a));
    resp->set_next_page_token(next);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::CountAddresses(Ctx* ctx, const v1::CountAddressesRequest* req,
                                                       v1::CountAddressesResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "CountAddresses")) return denied;
  return run(pool_, ctx, [req, resp](RedisConn& conn) {
    std::string name;
    Status s = domain_name(req->domain(), &name);
    if (!s.ok()) return s;
    uint64_t n = 0;
    s = store::count_addresses(conn, name, &n);
    resp->set_count(n);
    return s;
  });
}

grpc::ServerUnaryReactor* AdminService::GetStats(Ctx* ctx, const v1::GetStatsRequest* req, v1::Stats* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "GetStats")) return denied;
  if (req->minutes() > 120) {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "minutes must be 1..120 (0 = 60)"));
    return reactor;
  }
  const int minutes = req->minutes() == 0 ? 60 : static_cast<int>(req->minutes());
  return run(pool_, ctx, [minutes, resp](RedisConn& conn) {
    const int64_t now_minute =
        std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
    store::StatCounts c;
    Status s = store::read_stats(conn, now_minute, minutes, &c);
    resp->set_minutes(static_cast<uint32_t>(minutes));
    resp->set_accepted(c["accepted"]);
    resp->set_rejected(c["rejected"]);
    resp->set_deferred(c["deferred"]);
    resp->set_would_reject(c["would_reject"]);
    resp->set_harvest_tarpit(c["harvest_tarpit"]);
    resp->set_harvest_defer(c["harvest_defer"]);
    resp->set_callout_probes(c["callout_probes"]);
    return s;
  });
}

grpc::ServerReadReactor<v1::ImportChunk>* AdminService::ImportAddresses(Ctx* ctx, v1::ImportResponse* resp) {
  if (grpc::Status s = authorize(*ctx, "ImportAddresses"); !s.ok()) return new DeniedStream(s);
  return new ImportReactor(pool_, resp, false);
}

grpc::ServerReadReactor<v1::ImportChunk>* AdminService::ReplaceAddresses(Ctx* ctx, v1::ImportResponse* resp) {
  if (grpc::Status s = authorize(*ctx, "ReplaceAddresses"); !s.ok()) return new DeniedStream(s);
  return new ImportReactor(pool_, resp, true);
}

grpc::ServerUnaryReactor* AdminService::Explain(Ctx* ctx, const v1::ExplainRequest* req, v1::ExplainResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "Explain")) return denied;
  const checks::CalloutAges ages = callout_ages(callout_);
  std::shared_ptr<harvest::Harvest> harvest = harvest_;
  const std::string postmaster_domain = postmaster_domain_;
  auto explain = [req, resp, ages, harvest, postmaster_domain](RedisConn* conn, const std::string& error) {
    std::vector<v1::Verdict> verdicts;
    std::vector<std::vector<std::string>> steps;
    const std::string ip = harvest ? harvest->usable_ip(req->session().client_ip()) : "";
    const int64_t now = harvest::now_ms();
    std::optional<store::HarvestQuery> query;
    std::optional<store::HarvestCounts> counts;
    if (!ip.empty()) query = harvest->query(ip, now);
    check_group(conn, {req->address()}, &verdicts, &steps, error, ages, nullptr, nullptr, query ? &*query : nullptr,
                &counts, postmaster_domain);
    *resp->mutable_verdict() = verdicts.front();
    for (auto& s : steps.front()) resp->add_steps(std::move(s));
    if (!ip.empty()) {
      // Read only: Explain never counts.
      harvest::State hs = harvest->parse(ip, counts ? &*counts : nullptr, now);
      resp->add_steps(harvest->describe(ip, hs));
      if (harvest->deferred(hs)) {
        *resp->mutable_verdict() = harvest::defer_verdict(req->address());
      } else {
        // What CheckRecipients would do to it as a call of its own.
        std::vector<v1::Verdict> one = {resp->verdict()};
        harvest->apply_to_call(hs, {req->address()}, &one);
        *resp->mutable_verdict() = std::move(one.front());
      }
    } else if (!req->session().client_ip().empty() && harvest) {
      resp->add_steps("harvest: client IP '" + req->session().client_ip() + "' not counted (not an IP, or defence off)");
    }
  };
  auto* reactor = ctx->DefaultReactor();
  bool queued = pool_.submit([reactor, explain, deadline = ctx->deadline()](RedisConn& conn) {
    if (expired_before_start(deadline, reactor)) return;
    explain(&conn, "");
    reactor->Finish(grpc::Status::OK);
  });
  if (!queued) {
    explain(nullptr, "directory busy");
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

namespace {

// The cache key of an address: its domain must be guarded (for the
// normalisation rules). Fills `domain` and `key`.
Status callout_key(RedisConn& conn, const std::string& address, std::string* domain, std::string* key) {
  smtp::PathResult p = smtp::parse_mailbox(address);
  if (!p.ok()) return invalid("bad address '" + address + "'");
  std::string name;
  Status s = domain_name(p.mailbox.domain, &name);
  if (!s.ok()) return s;
  v1::Domain d;
  s = store::get_domain(conn, name, &d);
  if (!s.ok()) return s;
  *domain = name;
  *key = store::normalise_local(p.mailbox.local, d);
  return Status::Ok();
}

}  // namespace

grpc::ServerUnaryReactor* AdminService::GetCalloutEntry(Ctx* ctx, const v1::CalloutAddressRequest* req,
                                                        v1::CalloutEntry* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "GetCalloutEntry")) return denied;
  callout::Settings settings = callout_ ? callout_->settings() : callout::Settings();
  return run(pool_, ctx, [req, resp, settings](RedisConn& conn) {
    std::string domain, key;
    Status s = callout_key(conn, req->address(), &domain, &key);
    if (!s.ok()) return s;
    resp->set_address(smtp::Mailbox{key, domain}.str());
    std::optional<store::CacheEntry> e;
    int64_t pttl_ms = 0;
    s = store::read_address_result(conn, domain, key, &e, &pttl_ms);
    if (!s.ok()) return s;
    if (!e) return Status::Ok();
    const int64_t now = store::unix_ms_now();
    resp->set_found(true);
    resp->set_result(e->result);
    resp->set_age_ms(now - e->checked_ms);
    resp->set_expires_in_ms(pttl_ms >= 0 ? pttl_ms : e->expires_ms - now);
    auto refresh = e->result == "valid" ? settings.positive_refresh : settings.negative_refresh;
    resp->set_refresh_in_ms(e->checked_ms + refresh.count() - now);
    resp->set_source(e->backend);
    resp->set_reply(e->reply);
    resp->set_checked_unix_ms(e->checked_ms);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::ForgetCalloutEntry(Ctx* ctx, const v1::CalloutAddressRequest* req,
                                                           v1::ForgetCalloutResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "ForgetCalloutEntry")) return denied;
  return run(pool_, ctx, [req, resp](RedisConn& conn) {
    std::string domain, key;
    Status s = callout_key(conn, req->address(), &domain, &key);
    if (!s.ok()) return s;
    bool removed = false;
    s = store::forget_address_result(conn, domain, key, &removed);
    if (!s.ok()) return s;
    resp->set_removed(removed);
    log::info("callout_forget").kv("domain", domain).kv("removed", removed);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::FlushCalloutCache(Ctx* ctx, const v1::FlushCalloutRequest* req,
                                                          v1::FlushCalloutResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "FlushCalloutCache")) return denied;
  return run(pool_, ctx, [req, resp](RedisConn& conn) {
    std::string name;
    Status s = domain_name(req->domain(), &name);
    if (!s.ok()) return s;
    v1::Domain d;
    s = store::get_domain(conn, name, &d);
    if (!s.ok()) return s;
    uint64_t removed = 0;
    s = store::flush_domain(conn, name, &removed);
    if (!s.ok()) return s;
    resp->set_removed(removed);
    log::info("callout_flush").kv("domain", name).kv("removed", removed);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::PutSyncSource(Ctx* ctx, const v1::LdapSource* req, v1::LdapSource* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "PutSyncSource")) return denied;
  v1::LdapSource source = *req;
  std::string err = sync::validate_source(&source);
  if (!err.empty()) return fail(ctx, grpc::StatusCode::INVALID_ARGUMENT, err);
  return run(pool_, ctx, [source, resp](RedisConn& conn) {
    bool changed = false;
    Status s = store::put_sync_source(conn, source, &changed);
    if (!s.ok()) return s;
    if (changed) log::info("sync_source_put").kv("source", source.name()).kv("url", source.url());
    *resp = source;
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::DeleteSyncSource(Ctx* ctx, const v1::DeleteSyncSourceRequest* req,
                                                         v1::DeleteSyncSourceResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "DeleteSyncSource")) return denied;
  return run(pool_, ctx, [req, resp](RedisConn& conn) {
    bool removed = false;
    Status s = store::delete_sync_source(conn, req->name(), &removed);
    if (!s.ok()) return s;
    if (!removed) return Status::Error(Code::kNotFound, "sync source " + req->name() + " not found");
    resp->set_removed(true);
    log::info("sync_source_deleted").kv("source", req->name());
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::ListSyncSources(Ctx* ctx, const v1::ListSyncSourcesRequest*,
                                                        v1::ListSyncSourcesResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "ListSyncSources")) return denied;
  return run(pool_, ctx, [resp](RedisConn& conn) {
    std::vector<v1::LdapSource> sources;
    Status s = store::list_sync_sources(conn, &sources);
    for (auto& src : sources) *resp->add_sources() = std::move(src);
    return s;
  });
}

grpc::ServerUnaryReactor* AdminService::GetSyncStatus(Ctx* ctx, const v1::GetSyncStatusRequest*,
                                                      v1::GetSyncStatusResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "GetSyncStatus")) return denied;
  return run(pool_, ctx, [resp](RedisConn& conn) {
    store::SyncState state;
    Status s = store::read_sync_state(conn, &state);
    if (!s.ok()) return s;
    for (const auto& src : state.sources) {
      v1::SyncRecord* rec = resp->add_sources();
      if (auto it = state.source_records.find(src.name()); it != state.source_records.end()) *rec = it->second;
      rec->set_name(src.name());
      rec->clear_related();
      for (const auto& d : src.domains()) rec->add_related(d);
    }
    for (const auto& [name, rec] : state.domain_records) *resp->add_domains() = rec;
    resp->set_lease_holder(state.lease_holder);
    resp->set_last_periodic_unix_ms(state.last_periodic_ms);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* AdminService::RunSync(Ctx* ctx, const v1::RunSyncRequest* req, v1::RunSyncResponse* resp) {
  if (auto* denied = refuse_unauthenticated(ctx, "RunSync")) return denied;
  return run(pool_, ctx, [req, resp](RedisConn& conn) {
    std::string name;
    Status s = domain_name(req->domain(), &name);
    if (!s.ok()) return s;
    std::vector<v1::LdapSource> sources;
    s = store::list_sync_sources(conn, &sources);
    if (!s.ok()) return s;
    bool fed = false;
    for (const auto& src : sources)
      for (const auto& d : src.domains()) fed = fed || d == name;
    if (!fed) return Status::Error(Code::kNotFound, "no LDAP source feeds domain " + name);
    int64_t at = 0;
    s = store::request_sync(conn, name, req->force(), &at);
    if (!s.ok()) return s;
    resp->set_requested_unix_ms(at);
    log::info("sync_requested").kv("domain", name).kv("force", req->force());
    return Status::Ok();
  });
}

}  // namespace doorman::directory::service
