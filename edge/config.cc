#include "edge/config.h"

#include <unistd.h>

#include <charconv>

#include "common/address_hash.h"
#include "common/log.h"
#include "common/options.h"
#include "edge/proxy/proxy_protocol.h"

namespace doorman::edge {

SessionConfig EdgeConfig::session() const {
  SessionConfig s;
  s.hostname = hostname;
  s.max_line = static_cast<size_t>(max_line);
  s.max_recipients = static_cast<size_t>(max_recipients);
  s.max_message_size = static_cast<uint64_t>(max_message_size);
  s.soft_error_limit = static_cast<int>(soft_error_limit);
  s.hard_error_limit = static_cast<int>(hard_error_limit);
  s.junk_command_limit = static_cast<int>(junk_command_limit);
  s.error_delay = std::chrono::milliseconds(error_delay_ms);
  s.postmaster_domain = postmaster_domain;
  return s;
}

BackendTimeouts EdgeConfig::backend_timeouts() const {
  BackendTimeouts t;
  t.connect = std::chrono::milliseconds(backend_connect_timeout_ms);
  t.greeting = std::chrono::seconds(backend_command_timeout_seconds);
  t.command = std::chrono::seconds(backend_command_timeout_seconds);
  t.data_init = std::chrono::seconds(backend_data_init_timeout_seconds);
  t.data_block = std::chrono::seconds(backend_data_block_timeout_seconds);
  t.data_end = std::chrono::seconds(backend_data_end_timeout_seconds);
  return t;
}

TlsServerSettings EdgeConfig::tls_settings() const {
  TlsServerSettings t;
  t.cert_file = tls_cert_file;
  t.key_file = tls_key_file;
  t.min_version = tls_min_version;
  t.ciphers = tls_ciphers;
  t.check_interval = std::chrono::seconds(tls_reload_check_seconds);
  return t;
}

TlsClientSettings EdgeConfig::backend_tls_settings() const {
  TlsClientSettings t;
  parse_tls_mode(backend_tls, &t.mode);
  t.verify = backend_tls_verify;
  t.ca_file = backend_tls_ca_file;
  t.server_name = backend_tls_server_name;
  return t;
}

grpc_tls::ClientTls EdgeConfig::directory_tls() const {
  return {directory_tls_ca_file, directory_tls_cert_file, directory_tls_key_file, directory_tls_server_name,
          std::chrono::seconds(directory_tls_reload_seconds)};
}

bool split_host_port(const std::string& in, std::string* host, uint16_t* port) {
  size_t colon;
  if (!in.empty() && in.front() == '[') {
    size_t close = in.find(']');
    if (close == std::string::npos || close + 1 >= in.size() || in[close + 1] != ':') return false;
    *host = in.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = in.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    *host = in.substr(0, colon);
  }
  unsigned value = 0;
  const char* b = in.data() + colon + 1;
  const char* e = in.data() + in.size();
  auto [p, ec] = std::from_chars(b, e, value);
  if (ec != std::errc() || p != e || value > 65535 || b == e) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

std::string parse_config(int argc, const char* const* argv, EdgeConfig* c, std::string* help) {
  Options o("doorman-edge", "DOORMAN_EDGE",
            "The Doorman edge: an ESMTP server that refuses unknown recipients in-session\n"
            "by asking the directory about each RCPT TO group.");
  o.add_string("listen", &c->listen, "SMTP listen address, host:port or [v6]:port");
  o.add_string("http-listen", &c->http_listen,
               "HTTP address for /metrics, /healthz and /readyz (\"\" = off)");
  o.add_string("proxy-protocol", &c->proxy_protocol,
               "expect a PROXY protocol header from a TCP load balancer first: off, v1, v2 or any; "
               "a connection without a valid header is closed");
  o.add_string("proxy-trusted-networks", &c->proxy_trusted_networks,
               "peers allowed to send a PROXY header (the load balancers), CIDR list such as "
               "\"10.0.0.0/8,fd00::/8\"; required when proxy-protocol is on; other peers are closed at once");
  o.add_int("ipv6-client-prefix", &c->ipv6_client_prefix, 0, 128,
            "IPv6 clients count as one per this prefix for max-sessions-per-ip (IPv4: one per address)");
  o.add_string("hostname", &c->hostname, "our name in the greeting, EHLO reply and Received header (default: the host name)");
  o.add_int("threads", &c->threads, 0, 256, "I/O threads, one io_context each; 0 = one per core");
  o.add_string("directory", &c->directory, "directory gRPC target, e.g. dns:///doorman-directory:50051");
  o.add_int("directory-timeout-ms", &c->directory_timeout_ms, 50, 60000,
            "deadline of one directory call; past it the recipients get 451 4.4.3");
  o.add_int("directory-batch-in-flight", &c->directory_batch_in_flight, 0, 1024,
            "directory calls in flight at most; recipient checks that arrive meanwhile, from any session, go out "
            "together in one call when one returns (no timer); 0 = one call per check, no batching");
  o.add_int("directory-batch-stall-ms", &c->directory_batch_stall_ms, 1, 60000,
            "a directory call in flight for longer (e.g. waiting for callout probes) no longer counts against "
            "directory-batch-in-flight, so new checks do not queue behind it");
  o.add_string("directory-tls-ca-file", &c->directory_tls_ca_file,
               "PEM CA certificate(s) the directory's certificate must chain to; turns TLS to the directory on "
               "(\"\" = plaintext)");
  o.add_string("directory-tls-cert-file", &c->directory_tls_cert_file,
               "PEM client certificate (chain) presented to the directory, for mTLS (needs directory-tls-ca-file)");
  o.add_string("directory-tls-key-file", &c->directory_tls_key_file, "PEM private key of directory-tls-cert-file");
  o.add_string("directory-tls-server-name", &c->directory_tls_server_name,
               "name the directory's certificate must carry (\"\" = the host of --directory; set it for IP targets)");
  o.add_int("directory-tls-reload-seconds", &c->directory_tls_reload_seconds, 1, 86400,
            "how often the directory-tls files are re-read (renewed certificates apply to new connections)");
  o.add_int("max-sessions", &c->max_sessions, 1, 1000000, "concurrent SMTP sessions; more get 421 4.7.0");
  o.add_int("max-sessions-per-ip", &c->max_sessions_per_ip, 1, 1000000,
            "concurrent sessions from one client address on this edge; more get 421 4.7.0");
  o.add_int("greet-pause-ms", &c->greet_pause_ms, 0, 30000,
            "wait this long before the greeting; a client that talks first gets 554 5.5.0 (0 = off)");
  o.add_int("max-recipients", &c->max_recipients, 100, 100000, "recipients per transaction; more get 452 4.5.3");
  o.add_int("max-message-size", &c->max_message_size, 1024, 1LL << 34, "message size limit in bytes (SIZE)");
  o.add_int("max-line", &c->max_line, 512, 65536, "command line limit in bytes, CRLF included");
  o.add_int("idle-timeout-seconds", &c->idle_timeout_seconds, 1, 3600, "idle client timeout; then 421 4.4.2");
  o.add_int("soft-error-limit", &c->soft_error_limit, 0, 10000, "errors in a session before replies are delayed");
  o.add_int("hard-error-limit", &c->hard_error_limit, 1, 10000, "errors in a session before 421 4.7.0 and close");
  o.add_int("junk-command-limit", &c->junk_command_limit, 0, 100000,
            "NOOP, RSET, VRFY and HELP commands in a session before each one counts as an error");
  o.add_int("error-delay-ms", &c->error_delay_ms, 0, 60000, "delay of each reply past the soft error limit");
  o.add_string("postmaster-domain", &c->postmaster_domain,
               "domain that a bare RCPT TO:<postmaster> is checked as (empty: the directory resolves it, to its "
               "postmaster-domain or else the first guarded domain)");
  o.add_int("shutdown-grace-seconds", &c->shutdown_grace_seconds, 0, 3600,
            "on SIGTERM, how long transactions in progress may take to finish");
  o.add_string("tls-cert-file", &c->tls_cert_file,
               "PEM certificate chain for STARTTLS; with tls-key-file, STARTTLS is offered (re-read on change)");
  o.add_string("tls-key-file", &c->tls_key_file, "PEM private key for STARTTLS");
  o.add_string("tls-min-version", &c->tls_min_version, "oldest TLS version accepted: 1.2 or 1.3");
  o.add_string("tls-ciphers", &c->tls_ciphers, "OpenSSL cipher list for TLS 1.2 (\"\" = OpenSSL's default)");
  o.add_int("tls-handshake-timeout-seconds", &c->tls_handshake_timeout_seconds, 1, 600,
            "time allowed for the TLS handshake after 220 Ready to start TLS");
  o.add_int("tls-reload-check-seconds", &c->tls_reload_check_seconds, 1, 3600,
            "how often the certificate and key files are checked for changes");
  o.add_string("log-level", &c->log_level, "debug, info, warn or error");
  o.add_string("log-format", &c->log_format, "log line format: kv (key=value) or json (one object per line)");
  o.add_string("log-recipients", &c->log_recipients,
               "addresses in the per-recipient decision log (event=rcpt): clear (as given), hash (keyed HMAC, "
               "find one with `doormanctl hash`; needs log-recipients-key-file) or none (the domain only)");
  o.add_string("log-recipients-key-file", &c->log_recipients_key_file,
               "file holding the key of log-recipients hash (at least 16 bytes, e.g. `openssl rand -hex 32`); "
               "doormanctl hash needs the same key");
  o.add_int("backend-connect-timeout-ms", &c->backend_connect_timeout_ms, 100, 600000,
            "connecting to a back-end (then the next of the route; none left: 451 4.4.1)");
  o.add_int("backend-command-timeout-seconds", &c->backend_command_timeout_seconds, 1, 3600,
            "back-end greeting, EHLO, MAIL and RCPT replies (RFC 5321: 5 min)");
  o.add_int("backend-data-init-timeout-seconds", &c->backend_data_init_timeout_seconds, 1, 3600,
            "back-end reply to DATA (RFC 5321: 2 min)");
  o.add_int("backend-data-block-timeout-seconds", &c->backend_data_block_timeout_seconds, 1, 3600,
            "writing one chunk of message data to the back-end (RFC 5321: 3 min)");
  o.add_int("backend-data-end-timeout-seconds", &c->backend_data_end_timeout_seconds, 1, 3600,
            "back-end reply to the final dot (RFC 5321: 10 min); past it 451 4.4.2");
  o.add_int("backend-pool-max-idle", &c->backend_pool_max_idle, 0, 1000,
            "idle back-end connections kept per back-end and I/O thread, for reuse");
  o.add_int("backend-max-connections", &c->backend_max_connections, 0, 100000,
            "back-end connections in use per back-end host:port by this edge (0 = no cap); when every back-end "
            "of a route is full, recipients get 451 4.4.5");
  o.add_int("backend-pool-idle-seconds", &c->backend_pool_idle_seconds, 1, 3600,
            "how long an idle back-end connection may be reused");
  o.add_string("backend-tls", &c->backend_tls,
               "STARTTLS to back-ends: none, opportunistic (when offered) or required (else 451 4.4.1)");
  o.add_bool("backend-tls-verify", &c->backend_tls_verify,
             "verify the back-end's certificate chain and name (else TLS guards only against eavesdropping)");
  o.add_string("backend-tls-ca-file", &c->backend_tls_ca_file,
               "PEM CA bundle for backend-tls-verify (\"\" = the system's CA store)");
  o.add_string("backend-tls-server-name", &c->backend_tls_server_name,
               "name the back-end certificate must carry (\"\" = the route's host)");
  std::string err = o.parse(argc, argv);
  if (o.help_requested()) {
    *help = o.help();
    return "";
  }
  if (!err.empty()) return err;
  if (!o.positional().empty()) return "unexpected argument '" + o.positional()[0] + "'";
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(c->listen, &host, &port)) return "option listen: expected host:port, got '" + c->listen + "'";
  if (c->hard_error_limit <= c->soft_error_limit)
    return "option hard-error-limit must be greater than soft-error-limit";
  bool proxy_on = false;
  proxy::Version proxy_version = proxy::Version::kAny;
  if (!proxy::parse_mode(c->proxy_protocol, &proxy_on, &proxy_version))
    return "option proxy-protocol: expected off, v1, v2 or any";
  if (std::string e = c->proxy_trusted.parse(c->proxy_trusted_networks); !e.empty())
    return "option proxy-trusted-networks: " + e;
  if (proxy_on && c->proxy_trusted.empty())
    return "option proxy-trusted-networks is required with proxy-protocol: a PROXY header from any other peer "
           "would let it choose its own client address";
  TlsClientSettings::Mode backend_mode;
  if (!parse_tls_mode(c->backend_tls, &backend_mode))
    return "option backend-tls: expected none, opportunistic or required";
  if (c->tls_cert_file.empty() != c->tls_key_file.empty())
    return "options tls-cert-file and tls-key-file go together: set both or neither";
  if (c->tls_min_version != "1.2" && c->tls_min_version != "1.3") return "option tls-min-version: expected 1.2 or 1.3";
  log::Level level;
  if (!log::parse_level(c->log_level, &level)) return "option log-level: expected debug, info, warn or error";
  log::Format format;
  if (!log::parse_format(c->log_format, &format)) return "option log-format: expected kv or json";
  RecipientLogMode log_mode;
  if (!parse_recipient_log_mode(c->log_recipients, &log_mode))
    return "option log-recipients: expected clear, hash or none";
  std::string log_key;
  if (log_mode == RecipientLogMode::kHash) {
    if (c->log_recipients_key_file.empty())
      return "option log-recipients hash needs log-recipients-key-file (the key is never given on the command line)";
    if (std::string e = read_hash_key(c->log_recipients_key_file, &log_key); !e.empty())
      return "option log-recipients-key-file: " + e;
  }
  c->decision_log = DecisionLog(log_mode, log_key);
  if (std::string tls_err = grpc_tls::check(c->directory_tls(), "directory-tls-"); !tls_err.empty())
    return "option " + tls_err;
  if (c->hostname.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) == 0) c->hostname = name;
    if (c->hostname.empty()) c->hostname = "doorman.localdomain";
  }
  return "";
}

}  // namespace doorman::edge
