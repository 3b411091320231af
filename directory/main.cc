// doorman-directory: the recipient directory of Doorman.
//
// Answers the edge's RecipientService.CheckRecipients (one verdict per
// recipient of an RCPT group) and the operators' AdminService, both over
// gRPC, from a Redis database (schema: store/keys.h). Also serves
// grpc.health.v1 (SERVING while Redis is reachable) and reflection, and
// on a separate HTTP port (--http-listen, default 127.0.0.1:9026, "" = off)
// /metrics (Prometheus, docs/metrics.md), /healthz and /readyz (200 while
// Redis is reachable, the store carries its marker - see store/keys.h - and
// the directory is not shutting down).
//
// SECURITY: talks to the edge and to operators over gRPC, plaintext by
// default; --tls-cert-file/--tls-key-file serve TLS on every gRPC listener,
// and --tls-client-ca-file also requires a client certificate signed by that
// CA (mTLS; the files are re-read every --tls-reload-seconds; common/grpc_tls.h).
// The web console (--console-listen; console/console.h) is HTTP, or HTTPS
// with --console-tls-cert-file/--console-tls-key-file, where
// --console-tls-client-ca-file lets admins log in with a client certificate.
// Does not talk to SMTP clients. AdminService calls need a bearer token read from
// --admin-token-file (re-read when it changes), with or without mTLS; without one
// the directory refuses to start unless --admin-insecure is given (logged as a
// warning). --admin-listen serves AdminService on a listener of its own. The harvest
// defence (--harvest-*, on by default; harvest/harvest.h) counts unknown
// recipients per client IP in Redis and tarpits, then defers, harvesters.
// docs/hardening.md has both. The Redis password comes from a file
// (--redis-password-file) or the environment (DOORMAN_REDIS_PASSWORD), never
// from the command line (visible in /proc) and never into logs.
//
// LDAP / Active Directory sources (issue #14; sync/syncer.h) are synced into
// lists by one replica at a time (a Redis lease), every --sync-interval.
// Redis high availability: with --redis-sentinel host:port,... the Redis
// primary is the one the sentinels name for --redis-master-name, followed
// across failovers (store/sentinel.h); during a switch checks answer
// 451 4.4.3 and admin writes fail with a retryable error. Admin writes wait
// for one replica (--redis-replica-wait-ms) where the primary has replicas.
// docs/redis-sentinel.md.
//
// Start-up errors print one clear message and exit 1; SIGTERM/SIGINT stop
// gracefully (in-flight RPCs get shutdown-grace-seconds) and exit 0.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/grpc_tls.h"
#include "common/http_server.h"
#include "common/lock_graph.h"
#include "common/log.h"
#include "common/options.h"
#include "directory/apply/apply.h"
#include "directory/callout/callout.h"
#include "directory/console/console.h"
#include "directory/harvest/harvest.h"
#include "directory/metrics.h"
#include "directory/service/server.h"
#include "directory/service/stats_recorder.h"
#include "directory/store/normalise.h"
#include "directory/store/pool.h"
#include "directory/sync/syncer.h"
#include "directory/store/sentinel.h"

namespace {

using namespace doorman;

struct Config {
  std::string listen = "127.0.0.1:50051";
  std::string http_listen = "127.0.0.1:9026";
  std::string redis_host = "127.0.0.1";
  int64_t redis_port = 6379;
  std::string redis_password;  // from redis_password_file or DOORMAN_REDIS_PASSWORD, not an option
  std::string redis_password_file;
  int64_t redis_db = 0;
  int64_t redis_timeout_ms = 1000;
  int64_t redis_connections = 4;
  std::string redis_sentinel;  // host:port,... ("" = --redis-host)
  std::string redis_master_name = "doorman";
  std::string redis_sentinel_password;  // from the file or DOORMAN_REDIS_SENTINEL_PASSWORD
  std::string redis_sentinel_password_file;
  int64_t redis_replica_wait_ms = 500;
  std::string log_level = "info";
  std::string log_format = "kv";
  std::string apply;
  int64_t shutdown_grace_seconds = 10;
  std::string admin_listen;
  std::string admin_token_file;
  bool admin_insecure = false;
  // Web console (console/console.h), off by default.
  std::string console_listen;
  std::string console_session_ttl = "8h";
  std::string stats_interval = "60s";
  bool console_secure_cookie = false;
  std::string console_tls_cert_file;
  std::string console_tls_key_file;
  std::string console_tls_client_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  int64_t tls_reload_seconds = 60;
  // Harvest defence (harvest/harvest.h).
  bool harvest = true;
  std::string harvest_window = "10m";
  int64_t harvest_tarpit_threshold = 20;
  std::string harvest_tarpit_delay = "2s";
  int64_t harvest_defer_threshold = 100;
  std::string harvest_cooldown = "10m";
  int64_t harvest_memory_ips = 100000;
  int64_t harvest_ipv6_prefix = 64;
  std::string postmaster_domain;
  // Callout (callout/settings.h has the defaults and why).
  std::string callout_wait = "2s";
  std::string callout_connect_timeout = "5s";
  std::string callout_command_timeout = "10s";
  std::string callout_probe_timeout = "30s";
  std::string callout_positive_ttl = "7d";
  std::string callout_positive_refresh = "24h";
  std::string callout_negative_ttl = "2h";
  std::string callout_negative_refresh = "10m";
  std::string callout_catch_all_ttl = "24h";
  std::string callout_catch_all_refresh = "1h";
  std::string callout_idle_timeout = "10s";
  std::string callout_poll = "100ms";
  int64_t callout_threads = 0;  // deprecated, ignored
  int64_t callout_concurrency = 4;
  int64_t callout_rate = 10;
  int64_t callout_burst = 10;
  int64_t callout_session_probes = 8;
  std::string callout_helo = "doorman.invalid";
  std::string callout_tls = "none";
  bool callout_tls_verify = false;
  std::string callout_tls_ca_file;
  std::string callout_tls_server_name;
  // LDAP sync (sync/syncer.h).
  bool sync = true;
  std::string sync_interval = "5m";
  std::string sync_poll = "1s";
  std::string sync_lease = "60s";
  std::string sync_replica;
};

// Durations are given as 500ms, 2s, 10m, 24h, 7d.
struct DurationOption {
  const char* name;
  std::string* text;
  std::chrono::milliseconds* target;
  std::chrono::milliseconds min;
  std::chrono::milliseconds max;
};

// Parses each duration option into its target and checks its range; "" or
// the first error.
template <size_t N>
std::string parse_durations(const DurationOption (&durations)[N]) {
  for (const auto& d : durations) {
    if (!directory::callout::parse_duration(*d.text, d.target))
      return std::string("option ") + d.name + ": '" + *d.text + "' is not a duration (e.g. 500ms, 2s, 10m, 24h, 7d)";
    if (*d.target < d.min || *d.target > d.max)
      return std::string("option ") + d.name + ": " + *d.text + " is out of range";
  }
  return "";
}

void add_options(Options& o, Config& c) {
  o.add_string("listen", &c.listen, "gRPC listen address host:port (RecipientService, AdminService, health)");
  o.add_string("http-listen", &c.http_listen,
               "HTTP address host:port for /metrics, /healthz and /readyz (\"\" = off)");
  o.add_string("redis-host", &c.redis_host, "Redis host name or address");
  o.add_int("redis-port", &c.redis_port, 1, 65535, "Redis TCP port");
  o.add_string("redis-password-file", &c.redis_password_file,
               "file holding the Redis AUTH password (first line); without it the environment variable "
               "DOORMAN_REDIS_PASSWORD, else no AUTH");
  o.add_removed("redis-password",
                "a password on the command line is visible to every local user (/proc/PID/cmdline); use "
                "--redis-password-file FILE or the environment variable DOORMAN_REDIS_PASSWORD");
  o.add_int("redis-db", &c.redis_db, 0, 15, "Redis database number (SELECT)");
  o.add_int("redis-timeout-ms", &c.redis_timeout_ms, 10, 60000, "Redis connect and command timeout, milliseconds");
  o.add_int("redis-connections", &c.redis_connections, 1, 64, "Redis connections (one worker thread each)");
  o.add_string("redis-sentinel", &c.redis_sentinel,
               "Redis Sentinel addresses host:port,host:port,... ([IPv6]:port): the primary is the one they name "
               "for redis-master-name, followed across failovers (\"\" = use redis-host/redis-port)");
  o.add_string("redis-master-name", &c.redis_master_name, "with redis-sentinel: the name the sentinels monitor");
  o.add_string("redis-sentinel-password-file", &c.redis_sentinel_password_file,
               "file holding the sentinels' AUTH password (first line); without it the environment variable "
               "DOORMAN_REDIS_SENTINEL_PASSWORD, else no AUTH on the sentinels");
  o.add_int("redis-replica-wait-ms", &c.redis_replica_wait_ms, 0, 60000,
            "admin writes wait up to this long for one replica's acknowledgement (WAIT) when the primary has "
            "replicas, else fail with a retryable error; 0 = do not wait");
  o.add_string("log-level", &c.log_level, "log level: debug, info, warn or error");
  o.add_string("log-format", &c.log_format, "log line format: kv (key=value) or json (one object per line)");
  o.add_string("apply", &c.apply, "domains YAML applied at start-up, as 'doormanctl apply -f' (\"\" = none)");
  o.add_int("shutdown-grace-seconds", &c.shutdown_grace_seconds, 0, 3600,
            "on SIGTERM/SIGINT, seconds in-flight RPCs get before they are cancelled");
  o.add_string("admin-listen", &c.admin_listen,
               "gRPC address host:port serving only AdminService (\"\" = AdminService on --listen)");
  o.add_string("admin-token-file", &c.admin_token_file,
               "file holding the admin API bearer token (first line; re-read when it changes); required unless "
               "admin-insecure");
  o.add_string("console-listen", &c.console_listen,
               "HTTP address host:port of the web admin console (\"\" = off; needs --admin-token-file)");
  o.add_string("console-session-ttl", &c.console_session_ttl, "web console: lifetime of a login session [1m..7d]");
  o.add_string("stats-interval", &c.stats_interval,
               "how often this replica adds its counters' growth to the deployment's per-minute figures in Redis "
               "(the console's overview, doormanctl stats) [100ms..10m]");
  o.add_bool("console-secure-cookie", &c.console_secure_cookie,
             "web console: mark the session cookie Secure (set it when browsers reach the console over HTTPS)");
  o.add_string("console-tls-cert-file", &c.console_tls_cert_file,
               "web console: PEM certificate (chain); with console-tls-key-file serves HTTPS (\"\" = plain HTTP)");
  o.add_string("console-tls-key-file", &c.console_tls_key_file, "web console: PEM private key of console-tls-cert-file");
  o.add_string("console-tls-client-ca-file", &c.console_tls_client_ca_file,
               "web console: PEM CA of admins' client certificates: one that chains to it logs in without the token "
               "(asked for, not required; a certificate from another CA fails the handshake)");
  o.add_bool("admin-insecure", &c.admin_insecure,
             "serve the admin API without authentication (explicit opt-out; logged as a warning)");
  o.add_string("tls-cert-file", &c.tls_cert_file,
               "PEM certificate (chain) of the gRPC listeners; with tls-key-file turns TLS on (\"\" = plaintext)");
  o.add_string("tls-key-file", &c.tls_key_file, "PEM private key of tls-cert-file");
  o.add_string("tls-client-ca-file", &c.tls_client_ca_file,
               "PEM CA certificate(s): clients must present a certificate signed by it (mTLS; needs tls-cert-file)");
  o.add_int("tls-reload-seconds", &c.tls_reload_seconds, 1, 86400,
            "how often the TLS files (also the console's) are re-read (renewed certificates apply to new connections)");
  o.add_bool("harvest", &c.harvest,
             "harvest defence: count unknown recipients per client IP across replicas, tarpit and defer");
  o.add_string("harvest-window", &c.harvest_window,
               "harvest: sliding window of the unknown-recipient count (10 sub-windows) [10s..24h]");
  o.add_int("harvest-tarpit-threshold", &c.harvest_tarpit_threshold, 0, 1000000,
            "harvest: unknown recipients per window after which every rejection is delayed (0 = never)");
  o.add_string("harvest-tarpit-delay", &c.harvest_tarpit_delay,
               "harvest: delay the edge applies to a tarpitted rejection (Verdict.delay_ms) [0ms..60s]");
  o.add_int("harvest-defer-threshold", &c.harvest_defer_threshold, 0, 1000000,
            "harvest: unknown recipients per window after which the IP's recipients get 450 4.7.1 (0 = never)");
  o.add_string("harvest-cooldown", &c.harvest_cooldown,
               "harvest: how long an IP past the defer threshold stays deferred [1s..24h]");
  o.add_int("harvest-memory-ips", &c.harvest_memory_ips, 1, 10000000,
            "harvest: client IPs counted in memory while Redis is unavailable (least recently used dropped)");
  o.add_string("postmaster-domain", &c.postmaster_domain,
               "a bare RCPT TO:<Postmaster> (RFC 5321 4.5.1) is postmaster@ this domain (\"\" = the first guarded "
               "domain in sorted order)");
  o.add_int("harvest-ipv6-prefix", &c.harvest_ipv6_prefix, 0, 128,
            "harvest: IPv6 clients are counted per network of this prefix length (IPv4 per address)");
  o.add_string("callout-wait", &c.callout_wait,
               "callout: how long a check waits for a probe before answering 450 4.1.1 (must fit the edge's "
               "3 s deadline) [10ms..60s]");
  o.add_string("callout-connect-timeout", &c.callout_connect_timeout, "callout: back-end connect timeout [10ms..5m]");
  o.add_string("callout-command-timeout", &c.callout_command_timeout,
               "callout: timeout of each SMTP command of a probe [10ms..10m]");
  o.add_string("callout-probe-timeout", &c.callout_probe_timeout,
               "callout: a whole probe incl. queueing and limits; also the cross-replica lock lifetime [100ms..10m]");
  o.add_string("callout-positive-ttl", &c.callout_positive_ttl, "callout: lifetime of a cached valid result [1s..365d]");
  o.add_string("callout-positive-refresh", &c.callout_positive_refresh,
               "callout: age after which a valid result is refreshed in the background [1s..365d]");
  o.add_string("callout-negative-ttl", &c.callout_negative_ttl,
               "callout: lifetime of a cached unknown result [1s..365d]");
  o.add_string("callout-negative-refresh", &c.callout_negative_refresh,
               "callout: age after which an unknown result is refreshed in the background [1s..365d]");
  o.add_string("callout-catch-all-ttl", &c.callout_catch_all_ttl,
               "callout: lifetime of a domain's catch-all status (random-address probe) [1s..365d]");
  o.add_string("callout-catch-all-refresh", &c.callout_catch_all_refresh,
               "callout: age after which the catch-all status is probed again [1s..365d]");
  o.add_string("callout-idle-timeout", &c.callout_idle_timeout,
               "callout: an idle pooled probe session is closed with QUIT after this [100ms..1h]");
  o.add_string("callout-poll", &c.callout_poll,
               "callout: poll interval while another replica probes the same address [10ms..10s]");
  o.add_int("callout-threads", &c.callout_threads, 0, 256,
            "callout: deprecated and ignored (probes run on one event loop); accepted so older configurations start");
  o.add_int("callout-concurrency", &c.callout_concurrency, 1, 100, "callout: probe sessions per back-end");
  o.add_int("callout-rate", &c.callout_rate, 1, 10000, "callout: probes (RCPTs) per second per back-end");
  o.add_int("callout-burst", &c.callout_burst, 1, 10000, "callout: probe burst per back-end (token bucket size)");
  o.add_int("callout-session-probes", &c.callout_session_probes, 1, 1000,
            "callout: probes per session before QUIT (stay below the back-end's error limits)");
  o.add_string("callout-helo", &c.callout_helo, "callout: EHLO name of probe sessions");
  o.add_string("callout-tls", &c.callout_tls,
               "callout: STARTTLS to back-ends: none, opportunistic (when offered) or required (else undecided, 4xx)");
  o.add_bool("callout-tls-verify", &c.callout_tls_verify,
             "callout: verify the back-end's certificate chain and name");
  o.add_string("callout-tls-ca-file", &c.callout_tls_ca_file,
               "callout: PEM CA bundle for callout-tls-verify (\"\" = the system's CA store)");
  o.add_string("callout-tls-server-name", &c.callout_tls_server_name,
               "callout: name the back-end certificate must carry (\"\" = the route's host)");
  o.add_bool("sync", &c.sync,
             "LDAP sync: this replica may run the sync of LDAP / Active Directory sources (one replica at a time)");
  o.add_string("sync-interval", &c.sync_interval, "LDAP sync: time between periodic runs [1s..24h]");
  o.add_string("sync-poll", &c.sync_poll,
               "LDAP sync: how often the sync state and run requests are read from Redis [10ms..1m]");
  o.add_string("sync-lease", &c.sync_lease,
               "LDAP sync: lifetime of the one-replica lease, renewed after every LDAP page [5s..1h]");
  o.add_string("sync-replica", &c.sync_replica, "LDAP sync: this replica's name in sync status (\"\" = host:pid)");
}

// Fills `s` from the sync options; "" or an error message.
std::string sync_settings_from(Config& c, directory::sync::SyncSettings* s) {
  using std::chrono::milliseconds;
  const DurationOption durations[] = {
      {"sync-interval", &c.sync_interval, &s->interval, std::chrono::seconds(1), std::chrono::hours(24)},
      {"sync-poll", &c.sync_poll, &s->poll, milliseconds(10), std::chrono::minutes(1)},
      {"sync-lease", &c.sync_lease, &s->lease, std::chrono::seconds(5), std::chrono::hours(1)},
  };
  if (std::string e = parse_durations(durations); !e.empty()) return e;
  s->replica = c.sync_replica;
  return "";
}

// Fills `s` from the callout options; "" or an error message.
std::string callout_settings(Config& c, directory::callout::Settings* s) {
  using std::chrono::milliseconds;
  const milliseconds year = std::chrono::hours(24 * 365);
  const DurationOption durations[] = {
      {"callout-wait", &c.callout_wait, &s->wait_budget, milliseconds(10), std::chrono::seconds(60)},
      {"callout-connect-timeout", &c.callout_connect_timeout, &s->connect_timeout, milliseconds(10),
       std::chrono::minutes(5)},
      {"callout-command-timeout", &c.callout_command_timeout, &s->command_timeout, milliseconds(10),
       std::chrono::minutes(10)},
      {"callout-probe-timeout", &c.callout_probe_timeout, &s->probe_timeout, milliseconds(100),
       std::chrono::minutes(10)},
      {"callout-positive-ttl", &c.callout_positive_ttl, &s->positive_ttl, std::chrono::seconds(1), year},
      {"callout-positive-refresh", &c.callout_positive_refresh, &s->positive_refresh, std::chrono::seconds(1), year},
      {"callout-negative-ttl", &c.callout_negative_ttl, &s->negative_ttl, std::chrono::seconds(1), year},
      {"callout-negative-refresh", &c.callout_negative_refresh, &s->negative_refresh, std::chrono::seconds(1), year},
      {"callout-catch-all-ttl", &c.callout_catch_all_ttl, &s->catch_all_ttl, std::chrono::seconds(1), year},
      {"callout-catch-all-refresh", &c.callout_catch_all_refresh, &s->catch_all_refresh, std::chrono::seconds(1),
       year},
      {"callout-idle-timeout", &c.callout_idle_timeout, &s->idle_timeout, milliseconds(100), std::chrono::hours(1)},
      {"callout-poll", &c.callout_poll, &s->poll_interval, milliseconds(10), std::chrono::seconds(10)},
  };
  if (std::string e = parse_durations(durations); !e.empty()) return e;
  s->concurrency = static_cast<int>(c.callout_concurrency);
  s->rate = static_cast<double>(c.callout_rate);
  s->burst = static_cast<int>(c.callout_burst);
  s->session_probes = static_cast<int>(c.callout_session_probes);
  s->helo = c.callout_helo;
  if (!parse_tls_mode(c.callout_tls, &s->tls.mode))
    return "option callout-tls: expected none, opportunistic or required";
  s->tls.verify = c.callout_tls_verify;
  s->tls.ca_file = c.callout_tls_ca_file;
  s->tls.server_name = c.callout_tls_server_name;
  return directory::callout::make_tls_context(s);
}

// Fills `s` from the harvest options; "" or an error message.
std::string harvest_settings_from(Config& c, directory::harvest::Settings* s) {
  using std::chrono::milliseconds;
  const DurationOption durations[] = {
      {"harvest-window", &c.harvest_window, &s->window, std::chrono::seconds(10), std::chrono::hours(24)},
      {"harvest-tarpit-delay", &c.harvest_tarpit_delay, &s->tarpit_delay, milliseconds(0), std::chrono::seconds(60)},
      {"harvest-cooldown", &c.harvest_cooldown, &s->cooldown, std::chrono::seconds(1), std::chrono::hours(24)},
  };
  if (std::string e = parse_durations(durations); !e.empty()) return e;
  s->enabled = c.harvest;
  s->tarpit_threshold = static_cast<uint64_t>(c.harvest_tarpit_threshold);
  s->defer_threshold = static_cast<uint64_t>(c.harvest_defer_threshold);
  s->memory_ips = static_cast<size_t>(c.harvest_memory_ips);
  s->ipv6_prefix = static_cast<int>(c.harvest_ipv6_prefix);
  return "";
}

// A password from `file` (its first line, trailing CR and spaces removed),
// else from the environment variable `env`, else "". False when the file
// cannot be read.
bool read_secret(const std::string& file, const char* env, std::string* out) {
  out->clear();
  if (!file.empty()) {
    std::ifstream f(file);
    if (!f || !std::getline(f, *out)) return false;
    while (!out->empty() && (out->back() == '\r' || out->back() == ' ')) out->pop_back();
  } else if (const char* e = std::getenv(env); e && *e) {
    *out = e;
  }
  return true;
}

int run(int argc, char** argv) {
  disable_lock_order_checks();
  Config c;
  Options options("doorman-directory", "DOORMAN_DIRECTORY",
                  "The Doorman recipient directory: recipient verdicts and admin API over gRPC, backed by Redis.");
  add_options(options, c);
  std::string err = options.parse(argc, argv);
  if (options.help_requested()) {
    std::cout << options.help();
    return 0;
  }
  if (err.empty() && !options.positional().empty()) err = "unexpected argument '" + options.positional()[0] + "'";
  log::Level level;
  if (err.empty() && !log::parse_level(c.log_level, &level)) err = "option log-level: unknown level '" + c.log_level + "'";
  log::Format format = log::Format::kKeyValue;
  if (err.empty() && !log::parse_format(c.log_format, &format)) err = "option log-format: expected kv or json";
  directory::callout::Settings callout_settings_value;
  if (err.empty()) err = callout_settings(c, &callout_settings_value);
  directory::harvest::Settings harvest_settings;
  if (err.empty()) err = harvest_settings_from(c, &harvest_settings);
  directory::sync::SyncSettings sync_settings;
  if (err.empty()) err = sync_settings_from(c, &sync_settings);
  std::chrono::milliseconds stats_interval{0};
  if (err.empty()) {
    const DurationOption durations[] = {
        {"stats-interval", &c.stats_interval, &stats_interval, std::chrono::milliseconds(100), std::chrono::minutes(10)}};
    err = parse_durations(durations);
  }
  std::chrono::milliseconds console_ttl{0};
  if (err.empty() && (!directory::callout::parse_duration(c.console_session_ttl, &console_ttl) ||
                      console_ttl < std::chrono::minutes(1) || console_ttl > std::chrono::hours(24 * 7)))
    err = "option console-session-ttl: '" + c.console_session_ttl + "' is not a duration in [1m..7d]";
  if (err.empty() && !c.console_listen.empty() && c.admin_token_file.empty())
    err = "option console-listen: the console needs --admin-token-file (its login is the admin token)";
  if (err.empty() && !c.postmaster_domain.empty()) {
    std::string name;
    std::string bad = directory::store::normalise_domain_name(c.postmaster_domain, &name);
    if (!bad.empty()) err = "option postmaster-domain: " + bad;
    c.postmaster_domain = name;
  }
  std::vector<directory::store::Endpoint> sentinels;
  if (err.empty() && !c.redis_sentinel.empty()) {
    std::string bad = directory::store::parse_endpoints(c.redis_sentinel, &sentinels);
    if (!bad.empty()) err = "option redis-sentinel: " + bad;
    else if (c.redis_master_name.empty() || c.redis_master_name.find_first_of(" \t\r\n") != std::string::npos)
      err = "option redis-master-name: a name without spaces is required with redis-sentinel";
  }
  grpc_tls::ServerTls tls{c.tls_cert_file, c.tls_key_file, c.tls_client_ca_file,
                          std::chrono::seconds(c.tls_reload_seconds)};
  if (std::string tls_err = grpc_tls::check(tls, "tls-"); err.empty() && !tls_err.empty()) err = "option " + tls_err;
  // The console's own files: its clients are people with browsers, not the
  // edges whose certificates --tls-client-ca-file vouches for.
  grpc_tls::ServerTls console_tls{c.console_tls_cert_file, c.console_tls_key_file, c.console_tls_client_ca_file};
  if (std::string tls_err = grpc_tls::check(console_tls, "console-tls-"); err.empty() && !tls_err.empty())
    err = "option " + tls_err;
  if (err.empty() && console_tls.enabled() && c.console_listen.empty())
    err = "option console-tls-cert-file: needs --console-listen";
  if (!err.empty()) {
    std::cerr << "doorman-directory: " << err << "\n";
    return 2;
  }
  log::set_level(level);
  log::set_format(format);
  if (!read_secret(c.redis_password_file, "DOORMAN_REDIS_PASSWORD", &c.redis_password)) {
    std::cerr << "doorman-directory: cannot read redis-password-file " << c.redis_password_file << "\n";
    return 1;
  }
  if (!read_secret(c.redis_sentinel_password_file, "DOORMAN_REDIS_SENTINEL_PASSWORD", &c.redis_sentinel_password)) {
    std::cerr << "doorman-directory: cannot read redis-sentinel-password-file " << c.redis_sentinel_password_file
              << "\n";
    return 1;
  }
  std::shared_ptr<directory::auth::AdminAuth> admin_auth;
  if (!c.admin_token_file.empty()) {
    std::string auth_err;
    admin_auth = directory::auth::AdminAuth::from_file(c.admin_token_file, &auth_err);
    if (!admin_auth) {
      std::cerr << "doorman-directory: admin-token-file: " << auth_err << "\n";
      return 1;
    }
  } else if (c.admin_insecure) {
    admin_auth = directory::auth::AdminAuth::insecure();
    log::warn("admin_insecure").kv("message", "the admin API accepts calls without authentication");
  } else {
    std::cerr << "doorman-directory: the admin API needs --admin-token-file (a bearer token), or --admin-insecure "
                 "to serve it without authentication\n";
    return 2;
  }
  directory::apply::Config apply_config;
  if (!c.apply.empty()) {
    std::vector<std::string> errors;
    if (!directory::apply::load(c.apply, &apply_config, &errors)) {
      for (const auto& e : errors) std::cerr << "doorman-directory: " << e << "\n";
      return 1;
    }
    if (apply_config.domains.empty()) {
      // An empty --apply would delete every domain at each start.
      std::cerr << "doorman-directory: " << c.apply
                << " lists no domains: applying it at start-up would delete every guarded domain; refused\n";
      return 1;
    }
  }

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Every series exists (at zero) from the first scrape on.
  directory::directory_metrics();
  directory::console::Console::register_metrics();
  metrics::global()
      .gauge("doorman_directory_build_info", "Build information; always 1.", {{"version", DOORMAN_VERSION}})
      .set(1);

  directory::store::RedisPool::Settings ps;
  ps.redis.host = c.redis_host;
  ps.redis.port = static_cast<int>(c.redis_port);
  ps.redis.password = c.redis_password;
  ps.redis.db = static_cast<int>(c.redis_db);
  ps.redis.timeout = std::chrono::milliseconds(c.redis_timeout_ms);
  ps.redis.replica_wait = std::chrono::milliseconds(c.redis_replica_wait_ms);
  ps.connections = static_cast<int>(c.redis_connections);
  std::shared_ptr<directory::store::PrimaryLocator> locator;
  if (!sentinels.empty()) {
    directory::store::SentinelConfig sc;
    sc.sentinels = sentinels;
    sc.master_name = c.redis_master_name;
    sc.sentinel_password = c.redis_sentinel_password;
    sc.redis_password = c.redis_password;
    sc.timeout = ps.redis.timeout;
    locator = std::make_shared<directory::store::PrimaryLocator>(sc);
    ps.redis.locator = locator;
  }
  directory::store::RedisPool pool(ps);
  pool.start();
  // After the pool: the watcher wakes the pool's workers; stopped before it.
  if (locator) locator->start();
  auto stop_locator = [&locator] {
    if (locator) locator->stop();
  };

  directory::callout::Callout callout(pool, callout_settings_value);
  callout.start();

  directory::service::Server::Options server_options;
  server_options.auth = admin_auth;
  server_options.admin_listen = c.admin_listen;
  server_options.tls = tls;
  server_options.postmaster_domain = c.postmaster_domain;
  if (harvest_settings.enabled) server_options.harvest = std::make_shared<directory::harvest::Harvest>(harvest_settings);
  directory::service::Server server(pool, &callout, server_options);
  err = server.start(c.listen);
  if (!err.empty()) {
    std::cerr << "doorman-directory: " << err << "\n";
    stop_locator();
    pool.stop();
    callout.stop();
    return 1;
  }
  if (!c.apply.empty()) {
    auto stub = doorman::v1::AdminService::NewStub(server.in_process_channel());
    std::ostringstream out, errs;
    int rc = directory::apply::apply(*stub, apply_config, false, {out, errs, std::chrono::milliseconds(30000)});
    std::istringstream lines(out.str());
    for (std::string line; std::getline(lines, line);) log::info("apply").kv("file", c.apply).kv("change", line);
    std::istringstream elines(errs.str());
    for (std::string line; std::getline(elines, line);) log::warn("apply").kv("file", c.apply).kv("message", line);
    if (rc != 0) {
      std::cerr << "doorman-directory: applying " << c.apply << " failed\n";
      server.shutdown(std::chrono::milliseconds(0));
      server.wait();
      stop_locator();
    pool.stop();
      callout.stop();
      return 1;
    }
  }
  // The deployment's per-minute figures: this replica's counters, once an interval, through the pool.
  directory::service::StatsRecorder stats_recorder(pool, stats_interval);
  stats_recorder.start();
  // The LDAP sync: its own thread and Redis connection (never the pool's).
  std::unique_ptr<directory::sync::Syncer> syncer;
  if (c.sync) {
    syncer = std::make_unique<directory::sync::Syncer>(ps.redis, sync_settings);
    syncer->start();
  }
  // Declared after the pool: stopped (and destroyed) before it.
  std::atomic<bool> stopping{false};
  HttpServer http;
  // A listener that cannot start after the gRPC server did: stop everything, exit 1.
  auto stop_after_start_error = [&](const char* option, const std::string& error) {
    std::cerr << "doorman-directory: " << option << ": " << error << "\n";
    if (syncer) syncer->stop();
    stats_recorder.stop();
    server.shutdown(std::chrono::milliseconds(0));
    server.wait();
    callout.stop();
    http.stop();
    stop_locator();
    pool.stop();
    return 1;
  };
  if (!c.http_listen.empty()) {
    // Ready: a Redis connection is up, the store carries its marker (not a
    // Redis that lost its data) and we are not shutting down.
    add_standard_handlers(http, [&pool, &stopping, &server] {
      return !stopping.load() && pool.connected_count() > 0 && server.store_configured();
    });
    err = http.start(c.http_listen);
    if (!err.empty()) return stop_after_start_error("http-listen", err);
    log::info("http_listening").kv("addr", c.http_listen).kv("port", http.port());
  }
  // Declared after the server and the pool: stopped (and destroyed) before them.
  std::unique_ptr<directory::console::Console> console;
  if (!c.console_listen.empty()) {
    directory::console::Console::Options co;
    co.auth = admin_auth;
    co.channel = [&server] { return server.in_process_channel(); };
    co.pool = &pool;
    co.session_ttl = std::chrono::duration_cast<std::chrono::seconds>(console_ttl);
    co.secure_cookie = c.console_secure_cookie;
    co.tls = {c.console_tls_cert_file, c.console_tls_key_file, c.console_tls_client_ca_file,
              std::chrono::seconds(c.tls_reload_seconds), nullptr};
    console = std::make_unique<directory::console::Console>(co);
    err = console->start(c.console_listen);
    if (!err.empty()) return stop_after_start_error("console-listen", err);
    std::string console_addr = c.console_listen;
    if (auto colon = console_addr.rfind(':'); colon != std::string::npos)
      console_addr = console_addr.substr(0, colon + 1) + std::to_string(console->port());
    const char* scheme = console_tls.enabled() ? "https://" : "http://";
    log::info("console_listening")
        .kv("addr", console_addr)
        .kv("url", scheme + console_addr + "/")
        .kv("client_certificates", c.console_tls_client_ca_file.empty() ? "off" : "asked");
  }
  std::string addr = c.listen;
  if (auto colon = addr.rfind(':'); colon != std::string::npos) addr = addr.substr(0, colon + 1) + std::to_string(server.port());
  const char* transport = !tls.enabled() ? "plaintext" : tls.client_ca_file.empty() ? "tls" : "mtls";
  log::info("listening")
      .kv("addr", addr)
      .kv("transport", transport)
      .kv("redis", sentinels.empty() ? c.redis_host + ":" + std::to_string(c.redis_port)
                                      : "sentinel:" + c.redis_master_name);
  if (!c.admin_listen.empty()) {
    std::string admin_addr = c.admin_listen;
    if (auto colon = admin_addr.rfind(':'); colon != std::string::npos)
      admin_addr = admin_addr.substr(0, colon + 1) + std::to_string(server.admin_port());
    log::info("admin_listening").kv("addr", admin_addr).kv("transport", transport);
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  log::info("stopping").kv("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT").kv("grace_seconds", c.shutdown_grace_seconds);
  stopping = true;  // /readyz says 503 from now on
  if (console) console->stop();  // before the server its channel leads to
  server.shutdown(std::chrono::seconds(c.shutdown_grace_seconds));
  server.wait();
  if (syncer) syncer->stop();  // a run in progress finishes its current LDAP operation first
  // Probes still running answer nobody now; stop them before Redis.
  callout.stop();
  stats_recorder.stop();  // the last interval's figures, while the pool still runs
  http.stop();
  stop_locator();
  pool.stop();
  log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "doorman-directory: " << e.what() << "\n";
    return 1;
  }
}
