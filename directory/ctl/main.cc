// doormanctl: the command-line client of the directory's AdminService.
//
// Commands dispatch through a table (name, handler, usage). Talks to one
// directory over gRPC (--server, env DOORMAN_SERVER), plaintext unless
// --tls-ca-file (env DOORMAN_TLS_CA_FILE) turns TLS on; --tls-cert-file and
// --tls-key-file (DOORMAN_TLS_CERT_FILE, DOORMAN_TLS_KEY_FILE) add a client
// certificate for a directory that requires mTLS, --tls-server-name
// (DOORMAN_TLS_SERVER_NAME) the name to check for an IP address. Unary calls
// have a deadline of --timeout-seconds, streams (import, apply) have none.
// Imports stream in chunks of 1000 addresses, so a file of a million lines
// never becomes one message. Exit codes: 0 ok, 1 operation failed, 2 usage.
// Every call carries "authorization: Bearer <token>" when a token is given:
// --token-file FILE, else env DOORMAN_TOKEN_FILE (a file), else env
// DOORMAN_TOKEN (the token itself). The token is never printed.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>
#include <ctime>

#include "common/address_hash.h"
#include "common/grpc_tls.h"
#include "directory/apply/apply.h"
#include "directory/auth/admin_auth.h"
#include "directory/service/admin_json.h"
#include "directory/store/normalise.h"
#include "doorman/v1/admin.grpc.pb.h"
#include "smtp/address.h"

namespace {

namespace v1 = doorman::v1;
namespace apply = doorman::directory::apply;
namespace store = doorman::directory::store;

constexpr int kOk = 0, kFailed = 1, kUsage = 2;

struct Global {
  std::string server = "127.0.0.1:50051";
  int timeout_seconds = 10;
  std::string token_file;
  doorman::grpc_tls::ClientTls tls;
  std::unique_ptr<v1::AdminService::Stub> stub;
  bool json = false;  // --output json
};

// With --output json, prints `m` as one line of JSON (the console's JSON API
// has the same fields) and returns true; else false (print text).
bool print_json(const Global& g, const google::protobuf::Message& m) {
  if (!g.json) return false;
  std::cout << doorman::directory::admin_json(m) << "\n";
  return true;
}

struct UsageError {
  std::string message;
};

// Arguments of one command: positionals and --flags (repeatable).
struct Args {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> flags;
  bool has(const std::string& f) const { return flags.count(f) > 0; }
  std::string get(const std::string& f, const std::string& def = "") const {
    auto it = flags.find(f);
    return it == flags.end() ? def : it->second;
  }
};

// Flags that take no value.
const std::vector<std::string> kBoolFlags = {"case-sensitive", "case-insensitive", "no-subaddress", "dry-run",
                                             "callout-fallback", "no-callout-fallback", "allow-routing-local-parts",
                                             "no-allow-routing-local-parts", "allow-empty", "shadow", "enforce",
                                             "force", "no-wait", "help", "h"};

Args parse_args(const std::vector<std::string>& in, size_t from) {
  Args a;
  for (size_t i = from; i < in.size(); ++i) {
    const std::string& s = in[i];
    if (s.size() > 1 && s[0] == '-' && s != "-") {
      std::string name = s.substr(s.rfind('-', 1) == 1 ? 2 : 1);
      std::string value;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (std::find(kBoolFlags.begin(), kBoolFlags.end(), name) == kBoolFlags.end()) {
        if (i + 1 >= in.size()) throw UsageError{"option " + s + " needs a value"};
        value = in[++i];
      }
      a.flags.emplace(name, value);
    } else {
      a.pos.push_back(s);
    }
  }
  return a;
}

void check_flags(const Args& a, const std::vector<std::string>& allowed) {
  for (const auto& [k, v] : a.flags)
    if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) throw UsageError{"unknown option --" + k};
}

std::unique_ptr<grpc::ClientContext> ctx(const Global& g) {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(g.timeout_seconds));
  return c;
}

// Set once in run(): whether the channel uses TLS, for the hint below.
bool g_tls = false;

int failed(const std::string& what, const grpc::Status& s) {
  std::cerr << "error: " << what << ": " << s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    std::cerr << " (unavailable; safe to retry";
    // A TLS mismatch looks like a closed connection: say what to check.
    if (g_tls)
      std::cerr << "; or the TLS handshake failed: check --tls-ca-file, --tls-server-name and, if the directory "
                   "requires client certificates, --tls-cert-file/--tls-key-file";
    else
      std::cerr << "; if the directory serves TLS, give --tls-ca-file (and --tls-cert-file/--tls-key-file "
                   "when it requires client certificates)";
    std::cerr << ")";
  }
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED)
    std::cerr << " (give the admin token: --token-file, DOORMAN_TOKEN_FILE or DOORMAN_TOKEN)";
  std::cerr << "\n";
  return kFailed;
}

// "2026-12-06T08:00:00Z", or "unknown" for 0.
std::string utc_text(int64_t unix_ms) {
  if (unix_ms <= 0) return "unknown";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void print_domain(const v1::Domain& d) {
  std::string routes;
  for (const auto& r : d.routes()) routes += (routes.empty() ? "" : ",") + r;
  std::cout << d.name() << "  mode=" << store::mode_name(d.mode()) << " routes=" << routes
            << " case_sensitive=" << (d.local_part_case_sensitive() ? "true" : "false") << " subaddress_separator='"
            << store::separator_of(d) << "' addresses=" << d.address_count();
  if (d.mode() == v1::DOMAIN_MODE_CALLOUT || d.callout_fallback()) {
    std::cout << " callout_sender=<" << d.callout_sender() << "> catch_all_policy="
              << (d.catch_all_policy() == v1::CATCH_ALL_POLICY_DEFER ? "defer" : "accept");
    if (d.mode() == v1::DOMAIN_MODE_LIST) std::cout << " callout_fallback=true";
    const auto& st = d.catch_all();
    std::cout << " catch_all="
              << (st.state() == v1::CatchAllStatus::STATE_CATCH_ALL ? "yes"
                  : st.state() == v1::CatchAllStatus::STATE_NORMAL  ? "no"
                                                                    : "unknown");
  }
  std::cout << " allow_routing_local_parts=" << (d.allow_routing_local_parts() ? "true" : "false");
  // Shadow mode (issue #14): how many recipients enforcement would have
  // refused since it began.
  if (store::enforcing(d)) {
    std::cout << " enforce=true";
  } else {
    std::cout << " enforce=false shadow_since=" << utc_text(d.shadow().since_unix_ms())
              << " would_reject=" << d.shadow().would_reject();
  }
  if (d.ldap_sync_pending()) std::cout << " ldap_sync_pending=true";
  std::cout << "\n";
  if (d.catch_all().state() == v1::CatchAllStatus::STATE_CATCH_ALL)
    std::cout << "  warning: " << d.name() << ": " << d.catch_all().warning() << "\n";
  if (d.has_rejecting_unknown()) {  // issue #13: the console's overview verdict
    const auto& v = d.rejecting_unknown();
    std::cout << "  rejecting unknown recipients: " << (v.rejecting() ? "yes" : "no")
              << (v.reason().empty() ? "" : " (" + v.reason() + ")") << "\n";
  }
}

// Applies --mode, --route, --case-sensitive, --subaddress-separator,
// --no-subaddress onto d.
void domain_flags(const Args& a, v1::Domain* d, bool create) {
  if (a.has("mode")) {
    v1::DomainMode m;
    if (!store::parse_mode(a.get("mode"), &m)) throw UsageError{"--mode must be list, callout or accept-all"};
    d->set_mode(m);
  } else if (create) {
    throw UsageError{"--mode is required"};
  }
  if (a.has("route")) {
    d->clear_routes();
    auto [b, e] = a.flags.equal_range("route");
    for (auto it = b; it != e; ++it) {
      std::string err = store::validate_route(it->second);
      if (!err.empty()) throw UsageError{err};
      d->add_routes(it->second);
    }
  } else if (create) {
    throw UsageError{"at least one --route host:port is required"};
  }
  if (a.has("case-sensitive")) d->set_local_part_case_sensitive(true);
  if (a.has("case-insensitive")) d->set_local_part_case_sensitive(false);
  if (a.has("subaddress-separator") && a.has("no-subaddress"))
    throw UsageError{"--subaddress-separator and --no-subaddress exclude each other"};
  if (a.has("subaddress-separator")) d->set_subaddress_separator(a.get("subaddress-separator"));
  if (a.has("no-subaddress")) d->set_subaddress_separator("");
  if (a.has("callout-sender")) {
    std::string sender = a.get("callout-sender");
    if (sender == "<>") sender.clear();
    if (sender.size() >= 2 && sender.front() == '<' && sender.back() == '>') sender = sender.substr(1, sender.size() - 2);
    d->set_callout_sender(sender);
  }
  if (a.has("catch-all-policy")) {
    std::string p = a.get("catch-all-policy");
    if (p == "accept") d->set_catch_all_policy(v1::CATCH_ALL_POLICY_ACCEPT);
    else if (p == "defer") d->set_catch_all_policy(v1::CATCH_ALL_POLICY_DEFER);
    else throw UsageError{"--catch-all-policy must be accept or defer"};
  }
  if (a.has("callout-fallback") && a.has("no-callout-fallback"))
    throw UsageError{"--callout-fallback and --no-callout-fallback exclude each other"};
  if (a.has("callout-fallback")) d->set_callout_fallback(true);
  if (a.has("no-callout-fallback")) d->set_callout_fallback(false);
  if (a.has("allow-routing-local-parts") && a.has("no-allow-routing-local-parts"))
    throw UsageError{"--allow-routing-local-parts and --no-allow-routing-local-parts exclude each other"};
  if (a.has("allow-routing-local-parts")) d->set_allow_routing_local_parts(true);
  if (a.has("no-allow-routing-local-parts")) d->set_allow_routing_local_parts(false);
  if (a.has("shadow") && a.has("enforce")) throw UsageError{"--shadow and --enforce exclude each other"};
  if (a.has("shadow")) d->set_enforce(false);
  if (a.has("enforce")) d->set_enforce(true);
}

const std::vector<std::string> kDomainFlags = {"mode", "route", "case-sensitive", "case-insensitive",
                                               "subaddress-separator", "no-subaddress", "callout-sender",
                                               "catch-all-policy", "callout-fallback", "no-callout-fallback",
                                               "allow-routing-local-parts", "no-allow-routing-local-parts",
                                               "shadow", "enforce"};

std::string ms_text(int64_t ms) {
  bool neg = ms < 0;
  if (neg) ms = -ms;
  std::string t = ms < 120000       ? std::to_string(ms / 1000) + "s"
                  : ms < 7200000    ? std::to_string(ms / 60000) + "m"
                  : ms < 172800000  ? std::to_string(ms / 3600000) + "h"
                                    : std::to_string(ms / 86400000) + "d";
  return neg ? "-" + t : t;
}

int cmd_callout_show(Global& g, const Args& a) {
  check_flags(a, {});
  if (a.pos.size() != 1) throw UsageError{"expected one ADDRESS"};
  v1::CalloutAddressRequest req;
  req.set_address(a.pos[0]);
  v1::CalloutEntry resp;
  grpc::Status s = g.stub->GetCalloutEntry(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("callout show " + a.pos[0], s);
  if (print_json(g, resp)) return kOk;
  if (!resp.found()) {
    std::cout << resp.address() << "  not cached (the next check probes the back-end)\n";
    return kOk;
  }
  std::cout << resp.address() << "  result=" << resp.result() << " age=" << ms_text(resp.age_ms())
            << " expires_in=" << ms_text(resp.expires_in_ms())
            << " refresh=" << (resp.refresh_in_ms() <= 0 ? "due" : "in " + ms_text(resp.refresh_in_ms()))
            << " source=" << resp.source() << "\n  reply: " << resp.reply() << "\n";
  return kOk;
}

int cmd_callout_forget(Global& g, const Args& a) {
  check_flags(a, {});
  if (a.pos.empty()) throw UsageError{"expected ADDRESS..."};
  int rc = kOk;
  for (const auto& address : a.pos) {
    v1::CalloutAddressRequest req;
    req.set_address(address);
    v1::ForgetCalloutResponse resp;
    grpc::Status s = g.stub->ForgetCalloutEntry(ctx(g).get(), req, &resp);
    if (!s.ok()) {
      rc = failed("callout forget " + address, s);
      continue;
    }
    std::cout << address << (resp.removed() ? ": forgotten" : ": was not cached") << "\n";
  }
  return rc;
}

int cmd_callout_flush(Global& g, const Args& a) {
  check_flags(a, {});
  if (a.pos.size() != 1) throw UsageError{"expected one DOMAIN"};
  v1::FlushCalloutRequest req;
  req.set_domain(a.pos[0]);
  v1::FlushCalloutResponse resp;
  grpc::Status s = g.stub->FlushCalloutCache(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("callout flush " + a.pos[0], s);
  std::cout << a.pos[0] << ": " << resp.removed() << " cached callout results removed\n";
  return kOk;
}

int cmd_domain_add(Global& g, const Args& a) {
  check_flags(a, kDomainFlags);
  if (a.pos.size() != 1) throw UsageError{"expected one domain NAME"};
  v1::CreateDomainRequest req;
  req.mutable_domain()->set_name(a.pos[0]);
  domain_flags(a, req.mutable_domain(), true);
  v1::Domain resp;
  grpc::Status s = g.stub->CreateDomain(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("domain add " + a.pos[0], s);
  if (resp.mode() == v1::DOMAIN_MODE_ACCEPT_ALL) std::cerr << apply::accept_all_warning(resp.name()) << "\n";
  print_domain(resp);
  return kOk;
}

int cmd_domain_update(Global& g, const Args& a) {
  check_flags(a, kDomainFlags);
  if (a.pos.size() != 1) throw UsageError{"expected one domain NAME"};
  // Read, modify what the flags say, write back: unnamed options are kept.
  v1::GetDomainRequest get;
  get.set_name(a.pos[0]);
  v1::UpdateDomainRequest req;
  grpc::Status s = g.stub->GetDomain(ctx(g).get(), get, req.mutable_domain());
  if (!s.ok()) return failed("domain update " + a.pos[0], s);
  domain_flags(a, req.mutable_domain(), false);
  v1::Domain resp;
  s = g.stub->UpdateDomain(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("domain update " + a.pos[0], s);
  if (resp.mode() == v1::DOMAIN_MODE_ACCEPT_ALL) std::cerr << apply::accept_all_warning(resp.name()) << "\n";
  print_domain(resp);
  return kOk;
}

int cmd_domain_get(Global& g, const Args& a) {
  check_flags(a, {});
  if (a.pos.size() != 1) throw UsageError{"expected one domain NAME"};
  v1::GetDomainRequest req;
  req.set_name(a.pos[0]);
  v1::Domain resp;
  grpc::Status s = g.stub->GetDomain(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("domain get " + a.pos[0], s);
  if (print_json(g, resp)) return kOk;
  print_domain(resp);
  return kOk;
}

int cmd_domain_delete(Global& g, const Args& a) {
  check_flags(a, {});
  if (a.pos.size() != 1) throw UsageError{"expected one domain NAME"};
  v1::DeleteDomainRequest req;
  req.set_name(a.pos[0]);
  v1::DeleteDomainResponse resp;
  grpc::Status s = g.stub->DeleteDomain(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("domain delete " + a.pos[0], s);
  std::cout << "deleted " << a.pos[0] << " (" << resp.addresses_removed() << " addresses removed)\n";
  return kOk;
}

int cmd_domain_list(Global& g, const Args& a) {
  check_flags(a, {});
  if (!a.pos.empty()) throw UsageError{"domain list takes no arguments"};
  v1::ListDomainsResponse resp;
  grpc::Status s = g.stub->ListDomains(ctx(g).get(), v1::ListDomainsRequest(), &resp);
  if (!s.ok()) return failed("domain list", s);
  if (print_json(g, resp)) return kOk;
  for (const auto& d : resp.domains()) print_domain(d);
  return kOk;
}

int address_change(Global& g, const Args& a, bool add) {
  check_flags(a, {});
  if (a.pos.empty()) throw UsageError{"expected at least one ADDRESS"};
  v1::AddressesRequest req;
  for (const auto& p : a.pos) req.add_addresses(p);
  v1::AddressesResponse resp;
  grpc::Status s = add ? g.stub->AddAddresses(ctx(g).get(), req, &resp) : g.stub->RemoveAddresses(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed(add ? "address add" : "address remove", s);
  std::cout << (add ? "added " : "removed ") << resp.changed() << ", unchanged " << resp.unchanged() << "\n";
  for (const auto& e : resp.errors()) std::cerr << "error: " << e.address() << ": " << e.error() << " (not written)\n";
  return resp.errors_size() > 0 ? kFailed : kOk;
}

int cmd_address_add(Global& g, const Args& a) { return address_change(g, a, true); }
int cmd_address_remove(Global& g, const Args& a) { return address_change(g, a, false); }

int cmd_address_list(Global& g, const Args& a) {
  check_flags(a, {"page-size"});
  if (a.pos.size() != 1) throw UsageError{"expected one DOMAIN"};
  uint32_t page = static_cast<uint32_t>(std::atoi(a.get("page-size", "1000").c_str()));
  if (page == 0 || page > 10000) throw UsageError{"--page-size must be 1..10000"};
  std::string token;
  // JSON: one object, streamed page by page (a list of a million addresses
  // is never held whole): {"domain": "...", "addresses": ["...", ...]}.
  bool first = true;
  if (g.json) std::cout << "{\"domain\":" << doorman::directory::json_string(a.pos[0]) << ",\"addresses\":[";
  do {
    v1::ListAddressesRequest req;
    req.set_domain(a.pos[0]);
    req.set_page_size(page);
    req.set_page_token(token);
    v1::ListAddressesResponse resp;
    grpc::Status s = g.stub->ListAddresses(ctx(g).get(), req, &resp);
    if (!s.ok()) {
      if (g.json) std::cout << std::endl;  // what was printed is not valid JSON: the exit code says so
      return failed("address list " + a.pos[0], s);
    }
    for (const auto& addr : resp.addresses()) {
      if (!g.json) std::cout << addr << "\n";
      else std::cout << (first ? "" : ",") << doorman::directory::json_string(addr);
      first = false;
    }
    token = resp.next_page_token();
  } while (!token.empty());
  if (g.json) std::cout << "]}\n";
  return kOk;
}

int cmd_address_count(Global& g, const Args& a) {
  check_flags(a, {});
  if (a.pos.size() != 1) throw UsageError{"expected one DOMAIN"};
  v1::CountAddressesRequest req;
  req.set_domain(a.pos[0]);
  v1::CountAddressesResponse resp;
  grpc::Status s = g.stub->CountAddresses(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("address count " + a.pos[0], s);
  if (print_json(g, resp)) return kOk;
  std::cout << resp.count() << "\n";
  return kOk;
}

int cmd_import(Global& g, const Args& a) {
  check_flags(a, {"replace", "dry-run"});
  if (a.pos.size() != 1) throw UsageError{"expected one FILE (\"-\" for stdin)"};
  const std::string file = a.pos[0];
  std::string domain;
  if (a.has("replace")) {
    std::string err = store::normalise_domain_name(a.get("replace"), &domain);
    if (!err.empty()) throw UsageError{err};
  }
  const bool dry_run = a.has("dry-run");
  if (dry_run && domain.empty()) throw UsageError{"--dry-run needs --replace DOMAIN"};
  const bool from_stdin = file == "-";
  const char* nothing = domain.empty() ? "nothing was imported" : "nothing was replaced";
  // A file is checked completely before anything is sent (a dry run counts
  // its malformed lines instead, and goes on).
  if (!from_stdin && !dry_run) {
    size_t bad = 0;
    std::string io = apply::for_each_line(file, [&](int line, std::string_view text) {
      std::string full;
      std::string err = apply::parse_address_entry(text, domain, &full);
      if (!err.empty() && ++bad <= 20) std::cerr << file << ":" << line << ": " << err << "\n";
      return true;
    });
    if (!io.empty()) {
      std::cerr << "error: " << io << "\n";
      return kFailed;
    }
    if (bad > 0) {
      std::cerr << "error: " << bad << " malformed lines in " << file << "; " << nothing << "\n";
      return kFailed;
    }
  }
  grpc::ClientContext c;
  v1::ImportResponse resp;
  auto writer = domain.empty() ? g.stub->ImportAddresses(&c, &resp) : g.stub->ReplaceAddresses(&c, &resp);
  v1::ImportChunk chunk;
  chunk.set_domain(domain);
  chunk.set_dry_run(dry_run);
  bool broken = false, sent = false, aborted = false;
  size_t bad = 0;
  auto flush = [&] {
    sent = true;
    if (!writer->Write(chunk)) broken = true;
    chunk.Clear();
    return !broken;
  };
  std::string io = apply::for_each_line(file, [&](int line, std::string_view text) {
    std::string full;
    std::string err = apply::parse_address_entry(text, domain, &full);
    if (!err.empty()) {  // only reachable for stdin or a dry run
      if (++bad <= 20 || !dry_run) std::cerr << file << ":" << line << ": " << err << "\n";
      if (dry_run) return true;
      if (!domain.empty()) {
        aborted = true;  // a replace must not go ahead with a partial list
        return false;
      }
      return true;
    }
    chunk.add_addresses(full);
    return chunk.addresses_size() < static_cast<int>(apply::kChunkSize) || flush();
  });
  if (!io.empty() || aborted) {
    c.TryCancel();
  } else if (!broken && (chunk.addresses_size() > 0 || !sent)) {
    flush();
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!io.empty()) {
    std::cerr << "error: " << io << "; " << (domain.empty() ? "addresses before the error may have been imported" : nothing) << "\n";
    return kFailed;
  }
  if (aborted) {
    std::cerr << "error: malformed input; " << nothing << "\n";
    return kFailed;
  }
  if (!s.ok() && dry_run) return failed("import --replace " + domain + " --dry-run", s);
  if (dry_run) {
    // Lines this side could not parse were never sent: they count as malformed too.
    resp.set_error_count(resp.error_count() + bad);
    if (!print_json(g, resp)) {
      std::cout << "dry run for " << domain << " (nothing written): would add " << resp.added() << ", remove "
                << resp.removed() << ", keep " << resp.unchanged() << " unchanged; " << resp.error_count()
                << " malformed lines\n";
      for (const auto& e : resp.errors()) std::cerr << "error: " << e.address() << ": " << e.error() << "\n";
    }
    if (resp.error_count() > 0) std::cerr << "note: the replace itself would be refused while lines are malformed\n";
    return resp.error_count() > 0 ? kFailed : kOk;
  }
  if (!s.ok()) {
    failed(domain.empty() ? "import" : "import --replace " + domain, s);
    if (domain.empty()) std::cerr << "note: chunks sent before the failure were imported\n";
    else std::cerr << "note: " << nothing << "\n";
    return kFailed;
  }
  std::cout << "received " << resp.received() << ", added " << resp.added();
  if (!domain.empty()) std::cout << ", removed " << resp.removed();
  std::cout << ", unchanged " << resp.unchanged() << ", errors " << resp.error_count() << "\n";
  for (const auto& e : resp.errors()) std::cerr << "error: " << e.address() << ": " << e.error() << " (not written)\n";
  if (bad > 0) std::cerr << "error: " << bad << " malformed lines skipped; the other addresses were imported\n";
  return (resp.error_count() > 0 || bad > 0) ? kFailed : kOk;
}

int cmd_stats(Global& g, const Args& a) {
  check_flags(a, {"minutes"});
  if (!a.pos.empty()) throw UsageError{"stats takes no arguments"};
  v1::GetStatsRequest req;
  if (a.has("minutes")) {
    int m = std::atoi(a.get("minutes").c_str());
    if (m < 1 || m > 120) throw UsageError{"--minutes must be 1..120"};
    req.set_minutes(static_cast<uint32_t>(m));
  }
  v1::Stats resp;
  grpc::Status s = g.stub->GetStats(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("stats", s);
  if (print_json(g, resp)) return kOk;
  std::cout << "last " << resp.minutes() << " min, every directory replica:\n"
            << "  recipients  accepted=" << resp.accepted() << " rejected=" << resp.rejected()
            << " deferred=" << resp.deferred() << " would_reject=" << resp.would_reject() << "\n"
            << "  harvest     tarpitted=" << resp.harvest_tarpit() << " blocked=" << resp.harvest_defer() << "\n"
            << "  callout     probes=" << resp.callout_probes() << "\n";
  return kOk;
}

int cmd_explain(Global& g, const Args& a) {
  check_flags(a, {});
  if (a.pos.size() != 1) throw UsageError{"expected one ADDRESS"};
  v1::ExplainRequest req;
  req.set_address(a.pos[0]);
  v1::ExplainResponse resp;
  grpc::Status s = g.stub->Explain(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("explain", s);
  if (print_json(g, resp)) return kOk;
  for (const auto& step : resp.steps()) std::cout << "  " << step << "\n";
  const auto& v = resp.verdict();
  std::cout << v.code() << " " << v.enhanced_code() << " " << v.text() << "\n";
  std::cout << "decision=" << v1::Decision_Name(v.decision()) << " source=" << v1::Source_Name(v.source())
            << " reason=\"" << v.reason() << "\"";
  if (v.has_would_reject())
    std::cout << " would_reject=\"" << v.would_reject().code() << " " << v.would_reject().enhanced_code() << "\"";
  if (v.route().hosts_size() > 0) {
    std::string routes;
    for (const auto& h : v.route().hosts()) routes += (routes.empty() ? "" : ",") + h;
    std::cout << " route=" << routes;
  }
  std::cout << "\n";
  return kOk;
}

// The keyed hash of --log-recipients hash (common/address_hash.h): needs the
// edge's key, from --key-file, else env DOORMAN_LOG_RECIPIENTS_KEY_FILE (a
// file), else env DOORMAN_LOG_RECIPIENTS_KEY (the key itself). No server.
int cmd_hash(Global&, const Args& a) {
  check_flags(a, {"key-file"});
  if (a.pos.empty()) throw UsageError{"expected ADDRESS..."};
  std::string key;
  std::string file = a.get("key-file");
  if (file.empty())
    if (const char* e = std::getenv("DOORMAN_LOG_RECIPIENTS_KEY_FILE"); e && *e) file = e;
  if (!file.empty()) {
    if (std::string err = doorman::read_hash_key(file, &key); !err.empty()) {
      std::cerr << "doormanctl: " << err << "\n";
      return kFailed;
    }
  } else if (const char* e = std::getenv("DOORMAN_LOG_RECIPIENTS_KEY"); e && *e) {
    key = e;
    if (key.size() < doorman::kMinKeyBytes) {
      std::cerr << "doormanctl: DOORMAN_LOG_RECIPIENTS_KEY is too short (at least " << doorman::kMinKeyBytes
                << " bytes)\n";
      return kFailed;
    }
  } else {
    throw UsageError{"no key: give --key-file FILE (the edge's --log-recipients-key-file), or set "
                     "DOORMAN_LOG_RECIPIENTS_KEY_FILE or DOORMAN_LOG_RECIPIENTS_KEY"};
  }
  int rc = kOk;
  for (const auto& arg : a.pos) {
    // The edge logs the canonical mailbox (or a bare "postmaster"); so do we.
    std::string text = arg;
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>') text = text.substr(1, text.size() - 2);
    std::string canonical;
    if (doorman::smtp::ascii_lower(text) == "postmaster") {
      canonical = text;
    } else {
      doorman::smtp::PathResult p = doorman::smtp::parse_mailbox(text);
      if (!p.ok()) {
        std::cerr << "doormanctl: " << arg << ": not an address local@domain\n";
        rc = kFailed;
        continue;
      }
      canonical = p.mailbox.str();
    }
    std::cout << doorman::address_hash(key, canonical) << "  " << canonical << "\n";
  }
  return rc;
}

int cmd_apply(Global& g, const Args& a) {
  check_flags(a, {"f", "file", "dry-run", "allow-empty"});
  std::string file = a.has("f") ? a.get("f") : a.get("file");
  if (file.empty() && a.pos.size() == 1) file = a.pos[0];
  if (file.empty()) throw UsageError{"expected -f FILE"};
  apply::Config config;
  std::vector<std::string> errors;
  if (!apply::load(file, &config, &errors)) {
    for (const auto& e : errors) std::cerr << e << "\n";
    std::cerr << "error: " << file << " is invalid; nothing was changed\n";
    return kFailed;
  }
  return apply::apply(*g.stub, config, a.has("dry-run"), {std::cout, std::cerr, std::chrono::seconds(g.timeout_seconds)},
                      a.has("allow-empty"));
}

// "2026-12-06T08:00:00Z (12s ago)", or "never".
std::string when(int64_t unix_ms) {
  if (unix_ms <= 0) return "never";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return std::string(buf) + " (" + std::to_string(std::max<int64_t>(0, now_ms - unix_ms) / 1000) + "s ago)";
}

void print_record(const char* kind, const v1::SyncRecord& r) {
  std::string related;
  for (const auto& x : r.related()) related += (related.empty() ? "" : ",") + x;
  std::cout << kind << " " << r.name() << "  " << (std::string(kind) == "source" ? "domains=" : "sources=") << related
            << "\n    last_run=" << when(r.last_run_unix_ms()) << " last_success=" << when(r.last_success_unix_ms())
            << "\n    entries=" << r.entries() << " addresses=" << r.addresses() << " added=" << r.added()
            << " removed=" << r.removed();
  if (std::string(kind) == "source") std::cout << " ignored=" << r.ignored();
  std::cout << " duration_ms=" << r.duration_ms() << " replica=" << (r.replica().empty() ? "-" : r.replica()) << "\n";
  if (!r.held_back().empty())
    std::cout << "    held_back: +" << r.held_back_added() << " -" << r.held_back_removed() << ": " << r.held_back()
              << " (run with --force to apply)\n";
  if (!r.last_error().empty()) std::cout << "    last_error: " << r.last_error() << "\n";
}

int cmd_sync_status(Global& g, const Args& a) {
  check_flags(a, {});
  v1::GetSyncStatusResponse resp;
  grpc::Status s = g.stub->GetSyncStatus(ctx(g).get(), v1::GetSyncStatusRequest(), &resp);
  if (!s.ok()) return failed("sync status", s);
  if (print_json(g, resp)) return kOk;
  if (resp.sources().empty()) {
    std::cout << "no LDAP sources\n";
    return kOk;
  }
  std::cout << "last periodic run: " << when(resp.last_periodic_unix_ms())
            << "; syncing now: " << (resp.lease_holder().empty() ? "no" : resp.lease_holder()) << "\n";
  for (const auto& r : resp.sources()) print_record("source", r);
  for (const auto& r : resp.domains()) print_record("domain", r);
  return kOk;
}

int cmd_sync_sources(Global& g, const Args& a) {
  check_flags(a, {});
  v1::ListSyncSourcesResponse resp;
  grpc::Status s = g.stub->ListSyncSources(ctx(g).get(), v1::ListSyncSourcesRequest(), &resp);
  if (!s.ok()) return failed("sync sources", s);
  if (print_json(g, resp)) return kOk;
  for (const auto& src : resp.sources()) {
    std::string domains, attrs;
    for (const auto& d : src.domains()) domains += (domains.empty() ? "" : ",") + d;
    for (const auto& x : src.attributes()) attrs += (attrs.empty() ? "" : ",") + x;
    std::cout << src.name() << "  url=" << src.url() << " tls=" << src.tls() << " bind_dn=" << src.bind_dn()
              << " base_dn=" << src.base_dn() << " scope=" << src.scope() << " filter=" << src.filter()
              << " attributes=" << attrs << " domains=" << domains << " max_shrink=" << src.max_shrink()
              << " page_size=" << src.page_size() << "\n";
  }
  return kOk;
}

int cmd_sync_run(Global& g, const Args& a) {
  check_flags(a, {"force", "no-wait", "wait-seconds"});
  if (a.pos.size() != 1) throw UsageError{"expected one DOMAIN"};
  int wait_seconds = std::atoi(a.get("wait-seconds", "300").c_str());
  if (wait_seconds <= 0) throw UsageError{"--wait-seconds must be positive"};
  v1::RunSyncRequest req;
  req.set_domain(a.pos[0]);
  req.set_force(a.has("force"));
  v1::RunSyncResponse resp;
  grpc::Status s = g.stub->RunSync(ctx(g).get(), req, &resp);
  if (!s.ok()) return failed("sync run", s);
  std::cout << "sync of " << a.pos[0] << (req.force() ? " (forced)" : "") << " requested\n";
  if (a.has("no-wait")) return kOk;
  // The lease holder (any replica) takes the request at its next poll.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  std::string name;
  store::normalise_domain_name(a.pos[0], &name);
  while (std::chrono::steady_clock::now() < deadline) {
    v1::GetSyncStatusResponse st;
    s = g.stub->GetSyncStatus(ctx(g).get(), v1::GetSyncStatusRequest(), &st);
    if (!s.ok()) return failed("sync status", s);
    for (const auto& r : st.domains()) {
      if (r.name() != name || r.last_run_unix_ms() < resp.requested_unix_ms()) continue;
      print_record("domain", r);
      return r.last_error().empty() && r.held_back().empty() ? kOk : kFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::cerr << "error: no sync of " << name << " within " << wait_seconds
            << "s (is a directory with --sync running? see doormanctl sync status)\n";
  return kFailed;
}

struct Command {
  const char* name;
  int (*handler)(Global&, const Args&);
  const char* usage;
};

const Command kCommands[] = {
    {"domain add", cmd_domain_add,
     "domain add NAME --mode list|callout|accept-all --route HOST:PORT [--route ...]\n"
     "           [--case-sensitive] [--subaddress-separator X | --no-subaddress]\n"
     "           [--callout-sender ADDRESS|\"<>\"] [--catch-all-policy accept|defer] [--callout-fallback]\n"
     "           [--allow-routing-local-parts] [--shadow]"},
    {"domain update", cmd_domain_update,
     "domain update NAME [--mode M] [--route HOST:PORT ...] [--case-sensitive | --case-insensitive]\n"
     "           [--subaddress-separator X | --no-subaddress] [--callout-sender ADDRESS|\"<>\"]\n"
     "           [--catch-all-policy accept|defer] [--callout-fallback | --no-callout-fallback]\n"
     "           [--allow-routing-local-parts | --no-allow-routing-local-parts]\n"
     "           [--shadow | --enforce]   (--shadow: log and count would-be refusals, pass them to the\n"
     "           back-end; switching it on starts the count over)\n"
     "           (options not given are kept)"},
    {"domain get", cmd_domain_get, "domain get NAME"},
    {"domain delete", cmd_domain_delete, "domain delete NAME   (also deletes its address list)"},
    {"domain list", cmd_domain_list,
     "domain list   (shadow-mode domains: enforce=false, shadow_since, would_reject)"},
    {"address add", cmd_address_add, "address add ADDRESS..."},
    {"address remove", cmd_address_remove, "address remove ADDRESS..."},
    {"address list", cmd_address_list, "address list DOMAIN [--page-size N]   (follows all pages)"},
    {"address count", cmd_address_count, "address count DOMAIN"},
    {"import", cmd_import,
     "import FILE [--replace DOMAIN [--dry-run]]   (one address per line, '#' comments, \"-\" = stdin;\n"
     "           with --replace the list of DOMAIN becomes exactly the file, and bare local parts are allowed;\n"
     "           --dry-run only prints how many addresses would be added, removed and kept, and the malformed lines)"},
    {"stats", cmd_stats,
     "stats [--minutes N]   (recipients accepted/rejected/deferred, harvest and callout figures of the last N\n"
     "           minutes, default 60, summed over every directory replica)"},
    {"explain", cmd_explain, "explain ADDRESS   (the verdict and its reasoning; no side effects)"},
    {"callout show", cmd_callout_show, "callout show ADDRESS   (the cached probe result: result, age, expiry, source)"},
    {"callout forget", cmd_callout_forget, "callout forget ADDRESS...   (drop cached results: the next check probes)"},
    {"callout flush", cmd_callout_flush, "callout flush DOMAIN   (drop every cached result and the catch-all status)"},
    {"hash", cmd_hash,
     "hash ADDRESS... [--key-file FILE]   (the keyed hash the edge logs with --log-recipients hash;\n"
     "           key: --key-file, env DOORMAN_LOG_RECIPIENTS_KEY_FILE or DOORMAN_LOG_RECIPIENTS_KEY)"},
    {"sync status", cmd_sync_status,
     "sync status   (per LDAP source and domain: last run, last success, entries, added, removed,\n"
     "           held-back changes and why, last error)"},
    {"sync sources", cmd_sync_sources, "sync sources   (the LDAP sources, with their defaults filled in)"},
    {"sync run", cmd_sync_run,
     "sync run DOMAIN [--force] [--no-wait] [--wait-seconds N]   (sync the domain's LDAP sources now and\n"
     "           wait for the result; --force applies a held-back change; exit 1 when held back or failed)"},
    {"apply", cmd_apply,
     "apply -f domains.yaml [--dry-run] [--allow-empty]   (make the directory match the file;\n"
     "           a file without domains deletes them all and is refused without --allow-empty)"},
};

bool parse_output(const std::string& v) {
  if (v != "text" && v != "json") throw UsageError{"--output must be text or json"};
  return v == "json";
}

void usage(std::ostream& out) {
  out << "Usage: doormanctl [--server HOST:PORT] [--timeout-seconds N] [--token-file FILE] [--tls-* FILE] COMMAND ...\n"
         "Administers a Doorman directory over gRPC.\n\n"
         "Global options:\n"
         "  --server HOST:PORT     directory address (default 127.0.0.1:50051, env DOORMAN_SERVER)\n"
         "  --timeout-seconds N    deadline of each unary call (default 10; streams have none)\n"
         "  --token-file FILE      admin API bearer token (first line of FILE; env DOORMAN_TOKEN_FILE,\n"
         "                         or the token itself in env DOORMAN_TOKEN)\n"
         "  --tls-ca-file FILE     TLS to the directory, verified against this CA (env DOORMAN_TLS_CA_FILE)\n"
         "  --tls-cert-file FILE   client certificate, for a directory that requires mTLS (DOORMAN_TLS_CERT_FILE)\n"
         "  --tls-key-file FILE    its private key (env DOORMAN_TLS_KEY_FILE)\n"
         "  --tls-server-name NAME name the directory's certificate must carry, when --server is an IP address\n"
         "                         or another name (env DOORMAN_TLS_SERVER_NAME)\n"
         "  --output text|json     how read commands print (default text; also accepted after the command):\n"
         "                         json is one JSON document with the admin API's field names (the web\n"
         "                         console's JSON API has the same), for scripts and GitOps tools\n\n"
         "Commands:\n";
  for (const auto& c : kCommands) out << "  " << c.usage << "\n";
  out << "\nExit codes: 0 ok, 1 operation failed, 2 usage error.\n";
}

int run(int argc, char** argv) {
  Global g;
  if (const char* e = std::getenv("DOORMAN_SERVER"); e && *e) g.server = e;
  if (const char* e = std::getenv("DOORMAN_TOKEN_FILE"); e && *e) g.token_file = e;
  if (const char* e = std::getenv("DOORMAN_TLS_CA_FILE"); e && *e) g.tls.ca_file = e;
  if (const char* e = std::getenv("DOORMAN_TLS_CERT_FILE"); e && *e) g.tls.cert_file = e;
  if (const char* e = std::getenv("DOORMAN_TLS_KEY_FILE"); e && *e) g.tls.key_file = e;
  if (const char* e = std::getenv("DOORMAN_TLS_SERVER_NAME"); e && *e) g.tls.server_name = e;
  std::vector<std::string> args(argv + 1, argv + argc);
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h" || a == "help") {
      usage(std::cout);
      return kOk;
    }
    auto value = [&](const std::string& name) -> std::string {
      if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
      if (i + 1 >= args.size()) throw UsageError{name + " needs a value"};
      return args[++i];
    };
    if (a.rfind("--server", 0) == 0) g.server = value("--server");
    else if (a.rfind("--token-file", 0) == 0) g.token_file = value("--token-file");
    else if (a.rfind("--tls-ca-file", 0) == 0) g.tls.ca_file = value("--tls-ca-file");
    else if (a.rfind("--tls-cert-file", 0) == 0) g.tls.cert_file = value("--tls-cert-file");
    else if (a.rfind("--tls-key-file", 0) == 0) g.tls.key_file = value("--tls-key-file");
    else if (a.rfind("--tls-server-name", 0) == 0) g.tls.server_name = value("--tls-server-name");
    else if (a.rfind("--output", 0) == 0) g.json = parse_output(value("--output"));
    else if (a.rfind("--timeout-seconds", 0) == 0) {
      g.timeout_seconds = std::atoi(value("--timeout-seconds").c_str());
      if (g.timeout_seconds <= 0) throw UsageError{"--timeout-seconds must be positive"};
    } else if (a.rfind("--", 0) == 0) throw UsageError{"unknown option " + a};
    else break;
  }
  if (i >= args.size()) throw UsageError{"no command"};
  const Command* found = nullptr;
  size_t consumed = 0;
  for (const auto& c : kCommands) {
    std::string name = c.name;
    std::string joined = args[i];
    if (name.find(' ') != std::string::npos) {
      if (i + 1 >= args.size()) continue;
      joined += " " + args[i + 1];
      if (joined == name) found = &c, consumed = 2;
    } else if (joined == name) {
      found = &c, consumed = 1;
    }
    if (found) break;
  }
  if (!found) throw UsageError{"unknown command '" + args[i] + (i + 1 < args.size() ? " " + args[i + 1] : "") + "'"};
  Args parsed = parse_args(args, i + consumed);
  if (parsed.has("output")) {  // also accepted after the command, where scripts tend to put it
    g.json = parse_output(parsed.get("output"));
    parsed.flags.erase("output");
  }
  if (parsed.has("help") || parsed.has("h")) {
    std::cout << "Usage: doormanctl " << found->usage << "\n";
    return kOk;
  }
  std::string token;
  if (!g.token_file.empty()) {
    std::string err = doorman::directory::auth::read_token_file(g.token_file, &token);
    if (!err.empty()) {
      std::cerr << "doormanctl: " << err << "\n";
      return kFailed;
    }
  } else if (const char* e = std::getenv("DOORMAN_TOKEN"); e && *e) {
    token = e;
  }
  if (std::string err = doorman::grpc_tls::check(g.tls, "--tls-"); !err.empty()) {
    std::cerr << "doormanctl: " << err << "\n";
    return kUsage;
  }
  g_tls = g.tls.enabled();
  grpc::ChannelArguments channel_args;
  auto credentials = doorman::grpc_tls::channel_credentials(g.tls, &channel_args);
  g.stub = v1::AdminService::NewStub(grpc::experimental::CreateCustomChannelWithInterceptors(
      g.server, credentials, channel_args, doorman::directory::auth::bearer_interceptors(token)));
  try {
    return found->handler(g, parsed);
  } catch (const UsageError& e) {
    std::cerr << "doormanctl: " << e.message << "\nUsage: doormanctl " << found->usage << "\n";
    return kUsage;
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "doormanctl: " << e.message << "\n";
    usage(std::cerr);
    return kUsage;
  } catch (const std::exception& e) {
    std::cerr << "doormanctl: " << e.what() << "\n";
    return kFailed;
  }
}
