#include "directory/apply/apply.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <unordered_set>

#include "directory/store/normalise.h"
#include "smtp/address.h"

namespace doorman::directory::apply {
namespace {

namespace v1 = doorman::v1;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string where(const std::string& path, const YAML::Node& n) {
  return path + ":" + std::to_string(n.Mark().line + 1);
}

void set_deadline(grpc::ClientContext* ctx, std::chrono::milliseconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

std::string routes_text(const v1::Domain& d) {
  std::string out;
  for (const auto& r : d.routes()) out += (out.empty() ? "" : ",") + r;
  return out;
}

std::string describe(const v1::Domain& d) {
  return "mode " + store::mode_name(d.mode()) + ", routes " + routes_text(d) +
         (d.local_part_case_sensitive() ? ", case-sensitive" : "") + ", separator '" + store::separator_of(d) + "'" +
         (d.allow_routing_local_parts() ? ", routing local parts allowed" : "") +
         (store::enforcing(d) ? "" : ", shadow mode (enforce: false)");
}

// "mode list -> callout, routes a -> b", or "" when equal.
std::string diff(const v1::Domain& live, const v1::Domain& want) {
  std::vector<std::string> parts;
  if (live.mode() != want.mode())
    parts.push_back("mode " + store::mode_name(live.mode()) + " -> " + store::mode_name(want.mode()));
  if (routes_text(live) != routes_text(want)) parts.push_back("routes " + routes_text(live) + " -> " + routes_text(want));
  if (live.local_part_case_sensitive() != want.local_part_case_sensitive())
    parts.push_back(std::string("case_sensitive ") + (live.local_part_case_sensitive() ? "true" : "false") + " -> " +
                    (want.local_part_case_sensitive() ? "true" : "false"));
  if (store::separator_of(live) != store::separator_of(want))
    parts.push_back("subaddress_separator '" + store::separator_of(live) + "' -> '" + store::separator_of(want) + "'");
  if (live.callout_sender() != want.callout_sender())
    parts.push_back("callout_sender <" + live.callout_sender() + "> -> <" + want.callout_sender() + ">");
  auto policy = [](const v1::Domain& d) {
    return d.catch_all_policy() == v1::CATCH_ALL_POLICY_DEFER ? std::string("defer") : std::string("accept");
  };
  if (policy(live) != policy(want)) parts.push_back("catch_all_policy " + policy(live) + " -> " + policy(want));
  if (live.callout_fallback() != want.callout_fallback())
    parts.push_back(std::string("callout_fallback ") + (live.callout_fallback() ? "true" : "false") + " -> " +
                    (want.callout_fallback() ? "true" : "false"));
  if (live.allow_routing_local_parts() != want.allow_routing_local_parts())
    parts.push_back(std::string("allow_routing_local_parts ") + (live.allow_routing_local_parts() ? "true" : "false") +
                    " -> " + (want.allow_routing_local_parts() ? "true" : "false"));
  if (store::enforcing(live) != store::enforcing(want))
    parts.push_back(std::string("enforce ") + (store::enforcing(live) ? "true" : "false") + " -> " +
                    (store::enforcing(want) ? "true" : "false") +
                    (store::enforcing(want) ? "" : " (shadow mode: the would-reject count starts now)"));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

// Every address of a spec, inline first, then the files in order.
bool for_each_address(const DomainSpec& spec, const std::function<bool(const std::string&)>& fn, std::string* error) {
  for (const auto& a : spec.addresses)
    if (!fn(a)) return false;
  for (const auto& file : spec.address_files) {
    bool stopped = false;
    std::string err = for_each_line(file, [&](int, std::string_view text) {
      std::string full;
      if (!parse_address_entry(text, spec.domain.name(), &full).empty()) return true;  // validated by load()
      if (!fn(full)) {
        stopped = true;
        return false;
      }
      return true;
    });
    if (!err.empty()) {
      *error = err;
      return false;
    }
    if (stopped) return false;
  }
  return true;
}

// The normalised form apply compares in a dry run.
std::string comparable(const std::string& full, const v1::Domain& d) {
  smtp::PathResult p = smtp::parse_mailbox(full);
  return store::normalise_local(p.mailbox.local, d);
}

}  // namespace

std::string accept_all_warning(const std::string& domain) {
  return "warning: domain " + domain +
         " uses mode accept-all, the weakest mode: every address is accepted and the back-end decides; "
         "unknown recipients may cause bounces (backscatter)";
}

std::string parse_address_entry(std::string_view text, const std::string& domain, std::string* full) {
  text = trim(text);
  if (text.empty()) return "empty address";
  std::string candidate(text);
  // A bare local part has no '@' outside a quoted string.
  bool has_at = false, quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && quoted) ++i;
    else if (text[i] == '"') quoted = !quoted;
    else if (text[i] == '@' && !quoted) has_at = true;
  }
  if (!has_at) {
    if (domain.empty()) return "'" + candidate + "' is not local@domain";
    candidate += "@" + domain;
  }
  smtp::PathResult p = smtp::parse_mailbox(candidate);
  if (!p.ok()) {
    if (p.error == smtp::AddressError::kTooLong) return "address too long: '" + candidate + "'";
    if (p.error == smtp::AddressError::kNonAscii) return "non-ASCII address (SMTPUTF8 not supported): '" + candidate + "'";
    return "bad address syntax: '" + candidate + "'";
  }
  if (!domain.empty() && smtp::ascii_lower(p.mailbox.domain) != domain)
    return "address '" + candidate + "' is not in domain " + domain;
  *full = p.mailbox.str();
  return "";
}

std::string for_each_line(const std::string& path, const std::function<bool(int, std::string_view)>& fn) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path);
    if (!file) return "cannot read " + path;
    in = &file;
  }
  std::string line;
  int n = 0;
  while (std::getline(*in, line)) {
    ++n;
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    if (!fn(n, t)) break;
  }
  if (in->bad()) return "error reading " + path;
  return "";
}

bool load(const std::string& path, Config* out, std::vector<std::string>* errors) {
  out->path = path;
  out->domains.clear();
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    errors->push_back("cannot read " + path);
    return false;
  } catch (const YAML::Exception& e) {
    errors->push_back(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
    return false;
  }
  auto base = std::filesystem::path(path).parent_path();
  auto err = [&](const YAML::Node& n, const std::string& msg) { errors->push_back(where(path, n) + ": " + msg); };
  if (!root.IsMap() || !root["domains"]) {
    errors->push_back(path + ": expected a map with a 'domains' list");
    return false;
  }
  YAML::Node list = root["domains"];
  if (!list.IsSequence() && !list.IsNull()) {
    err(list, "'domains' must be a list");
    return false;
  }
  for (const auto& kv : root) {
    if (kv.first.as<std::string>() != "domains") err(kv.first, "unknown key '" + kv.first.as<std::string>() + "'");
  }
  std::set<std::string> seen;
  static const std::set<std::string> kKeys = {"name", "mode", "routes", "case_sensitive", "subaddress_separator",
                                              "addresses", "address_files", "callout_sender", "catch_all_policy",
                                              "callout_fallback", "allow_routing_local_parts", "enforce"};
  for (const auto& item : list) {
    if (!item.IsMap()) {
      err(item, "each domain must be a map");
      continue;
    }
    DomainSpec spec;
    spec.line = item.Mark().line + 1;
    for (const auto& kv : item) {
      std::string key = kv.first.Scalar();
      if (!kKeys.count(key)) err(kv.first, "unknown key '" + key + "'");
    }
    try {
      if (!item["name"] || !item["name"].IsScalar()) {
        err(item, "domain without 'name'");
        continue;
      }
      std::string name;
      std::string e = store::normalise_domain_name(item["name"].Scalar(), &name);
      if (!e.empty()) {
        err(item["name"], e);
        continue;
      }
      if (!seen.insert(name).second) err(item["name"], "domain " + name + " listed twice");
      spec.domain.set_name(name);
      v1::DomainMode mode = v1::DOMAIN_MODE_UNSPECIFIED;
      if (!item["mode"]) err(item, name + ": 'mode' is required (list, callout or accept-all)");
      else if (!store::parse_mode(item["mode"].Scalar(), &mode))
        err(item["mode"], name + ": unknown mode '" + item["mode"].Scalar() + "' (list, callout or accept-all)");
      spec.domain.set_mode(mode);
      YAML::Node routes = item["routes"];
      if (!routes || !routes.IsSequence() || routes.size() == 0) {
        err(routes ? routes : YAML::Node(item), name + ": 'routes' must be a non-empty list of host:port");
      } else {
        for (const auto& r : routes) {
          e = store::validate_route(r.Scalar());
          if (!e.empty()) err(r, name + ": " + e);
          spec.domain.add_routes(r.Scalar());
        }
      }
      if (item["case_sensitive"]) spec.domain.set_local_part_case_sensitive(item["case_sensitive"].as<bool>());
      spec.domain.set_subaddress_separator(std::string(store::kDefaultSeparator));
      if (YAML::Node sep = item["subaddress_separator"]) {
        std::string s = sep.IsNull() ? "" : sep.Scalar();
        if (s.size() > 1 || s == "@" || s == "\"" || s == "\\") err(sep, name + ": subaddress_separator must be one character or \"\"");
        spec.domain.set_subaddress_separator(s);
      }
      spec.domain.set_callout_sender("");
      if (YAML::Node sender = item["callout_sender"]) {
        std::string v = sender.IsNull() ? "" : sender.Scalar();
        if (v == "<>") v.clear();
        if (!v.empty() && !smtp::parse_mailbox(v).ok())
          err(sender, name + ": callout_sender must be an address local@domain or \"\" / \"<>\" for the null sender");
        spec.domain.set_callout_sender(v);
      }
      spec.domain.set_catch_all_policy(v1::CATCH_ALL_POLICY_ACCEPT);
      if (YAML::Node policy = item["catch_all_policy"]) {
        if (policy.Scalar() == "defer") spec.domain.set_catch_all_policy(v1::CATCH_ALL_POLICY_DEFER);
        else if (policy.Scalar() != "accept") err(policy, name + ": catch_all_policy must be accept or defer");
      }
      spec.domain.set_callout_fallback(false);
      if (YAML::Node fb = item["callout_fallback"]) {
        spec.domain.set_callout_fallback(fb.as<bool>());
        if (fb.as<bool>() && mode != v1::DOMAIN_MODE_LIST) err(fb, name + ": callout_fallback needs mode list");
      }
      spec.domain.set_allow_routing_local_parts(false);
      if (YAML::Node routing = item["allow_routing_local_parts"])
        spec.domain.set_allow_routing_local_parts(routing.as<bool>());
      spec.domain.set_enforce(true);
      if (YAML::Node enforce = item["enforce"]) spec.domain.set_enforce(enforce.as<bool>());
      if (YAML::Node addrs = item["addresses"]) {
        if (!addrs.IsSequence()) err(addrs, name + ": 'addresses' must be a list");
        for (const auto& a : addrs) {
          std::string full;
          e = parse_address_entry(a.Scalar(), name, &full);
          if (!e.empty()) err(a, e);
          else spec.addresses.push_back(full);
        }
      }
      if (YAML::Node files = item["address_files"]) {
        if (!files.IsSequence()) err(files, name + ": 'address_files' must be a list");
        for (const auto& f : files) {
          std::filesystem::path p(f.Scalar());
          std::string resolved = p.is_absolute() ? p.string() : (base / p).string();
          spec.address_files.push_back(resolved);
          size_t file_errors = 0;
          std::string io = for_each_line(resolved, [&](int line, std::string_view text) {
            std::string full;
            std::string bad = parse_address_entry(text, name, &full);
            if (!bad.empty() && ++file_errors <= 20) errors->push_back(resolved + ":" + std::to_string(line) + ": " + bad);
            return true;
          });
          if (!io.empty()) err(f, io);
          if (file_errors > 20)
            errors->push_back(resolved + ": " + std::to_string(file_errors - 20) + " more bad lines not shown");
        }
      }
    } catch (const YAML::Exception& ex) {
      errors->push_back(path + ":" + std::to_string(ex.mark.line + 1) + ": " + ex.msg);
      continue;
    }
    out->domains.push_back(std::move(spec));
  }
  return errors->empty();
}

std::string empty_refusal(const std::string& path) {
  return "error: " + path +
         " lists no domains: applying it would delete every guarded domain (and an empty directory defers all "
         "mail); give --allow-empty if that is what you want";
}

int apply(v1::AdminService::StubInterface& stub, const Config& config, bool dry_run, Io io, bool allow_empty) {
  if (config.domains.empty() && !allow_empty) {
    io.err << empty_refusal(config.path) << "\n";
    return 1;
  }
  // What is there now.
  std::map<std::string, v1::Domain> live;
  {
    grpc::ClientContext ctx;
    set_deadline(&ctx, io.timeout);
    v1::ListDomainsResponse resp;
    grpc::Status s = stub.ListDomains(&ctx, v1::ListDomainsRequest(), &resp);
    if (!s.ok()) {
      io.err << "error: list domains: " << s.error_message() << "\n";
      return 1;
    }
    for (const auto& d : resp.domains()) live[d.name()] = d;
  }
  bool changed = false;
  const char* would = dry_run ? "(dry run) " : "";
  for (const auto& spec : config.domains) {
    const v1::Domain& want = spec.domain;
    if (want.mode() == v1::DOMAIN_MODE_ACCEPT_ALL) io.err << accept_all_warning(want.name()) << "\n";
    auto it = live.find(want.name());
    bool is_new = it == live.end();
    if (is_new) {
      io.out << would << "+ domain " << want.name() << " (" << describe(want) << ")\n";
      changed = true;
      if (!dry_run) {
        grpc::ClientContext ctx;
        set_deadline(&ctx, io.timeout);
        v1::CreateDomainRequest req;
        *req.mutable_domain() = want;
        req.set_hold_marker(true);  // set by MarkConfigured once all is written
        v1::Domain resp;
        grpc::Status s = stub.CreateDomain(&ctx, req, &resp);
        if (!s.ok()) {
          io.err << "error: create domain " << want.name() << ": " << s.error_message() << "\n";
          return 1;
        }
      }
    } else if (std::string d = diff(it->second, want); !d.empty()) {
      io.out << would << "~ domain " << want.name() << ": " << d << "\n";
      changed = true;
      if (!dry_run) {
        grpc::ClientContext ctx;
        set_deadline(&ctx, io.timeout);
        v1::UpdateDomainRequest req;
        *req.mutable_domain() = want;
        req.set_hold_marker(true);
        v1::Domain resp;
        grpc::Status s = stub.UpdateDomain(&ctx, req, &resp);
        if (!s.ok()) {
          io.err << "error: update domain " << want.name() << ": " << s.error_message() << "\n";
          return 1;
        }
      }
    }

    uint64_t added = 0, removed = 0;
    std::string read_error;
    if (dry_run) {
      // Compare in memory: the desired set against the live list.
      std::unordered_set<std::string> desired;
      for_each_address(spec, [&](const std::string& a) { desired.insert(comparable(a, want)); return true; },
                       &read_error);
      std::unordered_set<std::string> current;
      if (!is_new) {
        std::string token;
        do {
          grpc::ClientContext ctx;
          set_deadline(&ctx, io.timeout);
          v1::ListAddressesRequest req;
          req.set_domain(want.name());
          req.set_page_size(10000);
          req.set_page_token(token);
          v1::ListAddressesResponse resp;
          grpc::Status s = stub.ListAddresses(&ctx, req, &resp);
          if (!s.ok()) {
            io.err << "error: list addresses of " << want.name() << ": " << s.error_message() << "\n";
            return 1;
          }
          for (const auto& a : resp.addresses()) current.insert(comparable(a, want));
          token = resp.next_page_token();
        } while (!token.empty());
      }
      for (const auto& a : desired) added += current.count(a) ? 0 : 1;
      for (const auto& a : current) removed += desired.count(a) ? 0 : 1;
    } else {
      grpc::ClientContext ctx;
      v1::ImportResponse resp;
      auto writer = stub.ReplaceAddresses(&ctx, &resp);
      v1::ImportChunk chunk;
      chunk.set_domain(want.name());
      chunk.set_hold_marker(true);
      bool broken = false, sent = false;
      auto flush = [&] {
        sent = true;
        if (!writer->Write(chunk)) broken = true;
        chunk.Clear();
        return !broken;
      };
      for_each_address(spec, [&](const std::string& a) {
        chunk.add_addresses(a);
        return chunk.addresses_size() < static_cast<int>(kChunkSize) || flush();
      }, &read_error);
      if (!broken && !read_error.empty()) ctx.TryCancel();
      if (!broken && read_error.empty() && (chunk.addresses_size() > 0 || !sent))
        flush();
      writer->WritesDone();
      grpc::Status s = writer->Finish();
      if (!read_error.empty()) {
        io.err << "error: " << read_error << " (list of " << want.name() << " not replaced)\n";
        return 1;
      }
      if (!s.ok()) {
        io.err << "error: replace addresses of " << want.name() << ": " << s.error_message() << "\n";
        return 1;
      }
      added = resp.added();
      removed = resp.removed();
    }
    if (added || removed) {
      io.out << would << want.name() << ": +" << added << " -" << removed << " addresses\n";
      changed = true;
    }
  }
  std::set<std::string> wanted;
  for (const auto& spec : config.domains) wanted.insert(spec.domain.name());
  for (const auto& [name, d] : live) {
    if (wanted.count(name)) continue;
    io.out << would << "- domain " << name << " (" << d.address_count() << " addresses)\n";
    changed = true;
    if (dry_run) continue;
    grpc::ClientContext ctx;
    set_deadline(&ctx, io.timeout);
    v1::DeleteDomainRequest req;
    req.set_name(name);
    v1::DeleteDomainResponse resp;
    grpc::Status s = stub.DeleteDomain(&ctx, req, &resp);
    if (!s.ok()) {
      io.err << "error: delete domain " << name << ": " << s.error_message() << "\n";
      return 1;
    }
  }
  if (!dry_run) {
    // Only now is the store configured: a store being restored after Redis
    // lost its data keeps deferring (451 4.3.0) until every domain and list
    // above is written, instead of answering 5xx for the ones not yet done.
    grpc::ClientContext ctx;
    set_deadline(&ctx, io.timeout);
    v1::MarkConfiguredRequest req;
    v1::MarkConfiguredResponse resp;
    grpc::Status s = stub.MarkConfigured(&ctx, req, &resp);
    if (!s.ok()) {
      io.err << "error: mark the store configured: " << s.error_message() << "\n";
      return 1;
    }
  }
  if (!changed) io.out << "no changes\n";
  return 0;
}

}  // namespace doorman::directory::apply
