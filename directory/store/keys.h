// The Redis key schema of the directory, spelled here and nowhere else.
//
// Every key starts with "doorman:v1:" so that a shared Redis can host other
// data and a future schema can live beside this one.
//
//   doorman:v1:configured            STRING  marker of a configured store:
//        unix ms of the last admin write that created or updated a domain
//        or replaced its list (so every apply). Read in the lookup pipeline
//        (fetch_group); absent (Redis restarted empty or was flushed) =
//        every recipient deferred 451 4.3.0 and /readyz failing, instead of
//        every recipient refused. Set at start-up when missing while
//        doorman:v1:domains is not empty (an install older than the marker).
//   doorman:v1:domains               SET   guarded domain names, lower-case
//   doorman:v1:domain:{name}         HASH  one guarded domain:
//        mode                  "list" | "callout" | "accept-all"
//        routes                back-end "host:port" list, comma-separated,
//                              in priority order
//        case_sensitive        "0" | "1" (local parts compared as given)
//        subaddress_separator  "" = sub-addressing off; field absent = "+"
//   doorman:v1:addresses:{name}      SET   normalised local parts of the
//                                          domain's list (see normalise.h)
//   doorman:v1:tmp:replace:{name}:{nonce}
//                                    SET   a list being replaced; RENAMEd
//                                          onto addresses:{name} at the end
//                                          of ReplaceAddresses. Carries a TTL
//                                          (kTmpTtlSeconds) so an abandoned
//                                          stream cleans itself up.
//        callout_sender        probe sender ("" or absent = "<>")
//        catch_all_policy      "accept" (default) | "defer"
//        callout_fallback      "0" | "1" (list mode: callout for unlisted)
//        allow_routing_local_parts "0" | "1" (absent = "0": local parts with
//                              '%', '!' or a quoted '@' are refused)
//        enforce               "0" | "1" (absent = "1"; "0" = shadow mode,
//                              issue #14: checks/shadow.cc)
//   doorman:v1:shadow:{name}         HASH  the shadow-mode count of a domain
//        with enforce "0": since_ms (unix ms when shadow mode was switched
//        on) and would_reject (recipients enforcement would have refused
//        since then, HINCRBY after each call). Written anew when shadow mode
//        is switched on, deleted when it is switched off or the domain is
//        deleted; a separate key, so a late HINCRBY can never bring a
//        deleted domain's hash back.
//        ldap_sources          the LDAP sources whose last sync fed the list,
//                              comma-separated (written by the syncer)
//        ldap_pending          "1" while an LDAP source feeds the domain and
//                              has not yet synced a non-empty list (absent
//                              otherwise): unlisted recipients are deferred
//
// Callout cache (directory/callout/, shared by every replica):
//   doorman:v1:callout:{name}:{local} STRING  one probe result of the
//        normalised local part: "v1|valid|unknown|checked_ms|expires_ms|
//        backend|reply" (see store/callout_cache.h); PX = its lifetime
//   doorman:v1:callout-domain:{name}  STRING  the catch-all status, same
//        format with result "catch-all" | "normal"; PX = its lifetime
//   doorman:v1:callout-lock:{name}:{local}    STRING  single-flight lock of a
//        probe across replicas (SET NX PX, value = owner token)
//   doorman:v1:callout-domain-lock:{name}     STRING  same, for the
//        catch-all probe
// The local part comes last, so ':' inside it cannot collide.
//
// Harvest defence (directory/harvest/, shared by every replica):
//   doorman:v1:harvest:{ip}:{bucket}  STRING  unknown recipients of a client
//        IP in one sub-window (bucket = unix ms / (window / 10)); INCRBY,
//        PEXPIRE = window + one sub-window
//   doorman:v1:harvest-block:{ip}     STRING  the IP is deferred until this
//        unix ms; PX = the cooldown
// {ip} is the client identity of common/ip_prefix.h (client_identity): an
// IPv4 address "192.0.2.1" or an IPv6 network "2001:db8:1:2::/64" (a bare
// IPv6 address with --harvest-ipv6-prefix=128), rebuilt from parsed bytes,
// so it only holds 0-9 a-f '.' ':' '/'; the bucket number comes last, so
// keys cannot collide.
//
// LDAP / Active Directory sync (directory/sync/, issue #14):
//   doorman:v1:sync-sources           HASH  source name -> doorman.v1.LdapSource
//        (binary protobuf)
//   doorman:v1:sync-status            HASH  "source:{name}" | "domain:{name}" ->
//        doorman.v1.SyncRecord (binary protobuf): what the last run did
//   doorman:v1:sync-requests          HASH  domain -> "force" | "normal": runs
//        asked for by RunSync, taken by the lease holder
//   doorman:v1:sync-last-run          STRING unix ms of the last periodic run
//        (deleted when a source changes, so the next poll syncs)
//   doorman:v1:sync-lease             STRING the replica syncing now: SET NX PX,
//        value = "{replica} {random}" (renewed and released only by its owner)
//
// Recent figures (store/stats.h, the console's overview and doormanctl stats):
//   doorman:v1:stats:{unix minute}    HASH  accepted, rejected, deferred,
//        would_reject, harvest_tarpit, harvest_defer, callout_probes: what
//        every replica counted in that minute (HINCRBY once a minute per
//        replica); EXPIRE 2 h
//
// Web console (directory/console/, shared by every replica):
//   doorman:v1:console-revoked:{sid} STRING  a logged-out console session
//        (sid = 32 hex digits); PX = until the session would have expired
//
// The domain name inside a key is already validated and lower-cased; it can
// not contain ':' or spaces (smtp::is_valid_domain), so keys cannot collide.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace doorman::directory::store::keys {

inline constexpr std::string_view kPrefix = "doorman:v1:";
inline constexpr int kTmpTtlSeconds = 3600;

// Hash field names of domain:{name}.
inline constexpr std::string_view kFieldMode = "mode";
inline constexpr std::string_view kFieldRoutes = "routes";
inline constexpr std::string_view kFieldCaseSensitive = "case_sensitive";
inline constexpr std::string_view kFieldSeparator = "subaddress_separator";
inline constexpr std::string_view kFieldCalloutSender = "callout_sender";
inline constexpr std::string_view kFieldCatchAllPolicy = "catch_all_policy";
inline constexpr std::string_view kFieldCalloutFallback = "callout_fallback";
inline constexpr std::string_view kFieldAllowRouting = "allow_routing_local_parts";
inline constexpr std::string_view kFieldEnforce = "enforce";
// Hash field names of shadow:{name}.
inline constexpr std::string_view kFieldShadowSince = "since_ms";
inline constexpr std::string_view kFieldShadowWouldReject = "would_reject";
inline constexpr std::string_view kFieldLdapPending = "ldap_pending";
inline constexpr std::string_view kFieldLdapSources = "ldap_sources";

inline std::string configured() { return std::string(kPrefix) + "configured"; }
inline std::string domains() { return std::string(kPrefix) + "domains"; }
inline std::string domain(std::string_view name) { return std::string(kPrefix) + "domain:" + std::string(name); }
inline std::string addresses(std::string_view name) {
  return std::string(kPrefix) + "addresses:" + std::string(name);
}
inline std::string shadow(std::string_view name) { return std::string(kPrefix) + "shadow:" + std::string(name); }
inline std::string tmp_replace(std::string_view name, std::string_view nonce) {
  return std::string(kPrefix) + "tmp:replace:" + std::string(name) + ":" + std::string(nonce);
}

inline std::string callout(std::string_view name, std::string_view local) {
  return std::string(kPrefix) + "callout:" + std::string(name) + ":" + std::string(local);
}
// SCAN pattern for every callout result of a domain (domain names have no
// glob characters: smtp::is_valid_domain without address literals).
inline std::string callout_pattern(std::string_view name) {
  return std::string(kPrefix) + "callout:" + std::string(name) + ":*";
}
inline std::string callout_domain(std::string_view name) {
  return std::string(kPrefix) + "callout-domain:" + std::string(name);
}
inline std::string callout_lock(std::string_view name, std::string_view local) {
  return std::string(kPrefix) + "callout-lock:" + std::string(name) + ":" + std::string(local);
}
inline std::string callout_domain_lock(std::string_view name) {
  return std::string(kPrefix) + "callout-domain-lock:" + std::string(name);
}

inline std::string harvest(std::string_view ip, int64_t bucket) {
  return std::string(kPrefix) + "harvest:" + std::string(ip) + ":" + std::to_string(bucket);
}
inline std::string harvest_block(std::string_view ip) {
  return std::string(kPrefix) + "harvest-block:" + std::string(ip);
}
inline std::string stats(int64_t unix_minute) { return std::string(kPrefix) + "stats:" + std::to_string(unix_minute); }
inline std::string console_revoked(std::string_view sid) {
  return std::string(kPrefix) + "console-revoked:" + std::string(sid);
}

inline std::string sync_sources() { return std::string(kPrefix) + "sync-sources"; }
inline std::string sync_status() { return std::string(kPrefix) + "sync-status"; }
inline std::string sync_requests() { return std::string(kPrefix) + "sync-requests"; }
inline std::string sync_last_run() { return std::string(kPrefix) + "sync-last-run"; }
inline std::string sync_lease() { return std::string(kPrefix) + "sync-lease"; }

}  // namespace doorman::directory::store::keys
