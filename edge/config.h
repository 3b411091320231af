// The edge's configuration: one typed, validated struct. Every key is also an
// environment variable (DOORMAN_EDGE_<KEY>) and a line of an optional file;
// `doorman-edge --help` prints them all with defaults (docs/configuration.md
// and the chart's values.yaml carry the same keys).
#pragma once

#include <cstdint>
#include <string>

#include "common/grpc_tls.h"
#include "common/networks.h"
#include "edge/decision_log.h"
#include "edge/net/backend.h"
#include "edge/session/session.h"
#include "edge/tls/tls_context.h"

namespace doorman::edge {

struct EdgeConfig {
  std::string listen = "127.0.0.1:2525";
  std::string http_listen = "127.0.0.1:9025";
  std::string proxy_protocol = "off";  // off | v1 | v2 | any
  // Peers allowed to send a PROXY header (CIDR list); required with it on.
  std::string proxy_trusted_networks;
  NetworkList proxy_trusted;  // parsed from proxy_trusted_networks
  // IPv6 clients count by this prefix for max-sessions-per-ip (IPv4: per address).
  int64_t ipv6_client_prefix = 64;
  std::string hostname;  // default: gethostname()
  int64_t threads = 0;   // 0: one per core
  std::string directory = "127.0.0.1:50051";
  int64_t directory_timeout_ms = 3000;
  // Directory calls in flight at most; checks queued meanwhile go out as one
  // CheckBatch call (edge/directory_batcher.h). 0 = no batching.
  int64_t directory_batch_in_flight = 1;
  // A call in flight for longer no longer counts against that limit.
  int64_t directory_batch_stall_ms = 25;
  // TLS to the directory (common/grpc_tls.h); no CA file = plaintext.
  std::string directory_tls_ca_file;
  std::string directory_tls_cert_file;
  std::string directory_tls_key_file;
  std::string directory_tls_server_name;
  int64_t directory_tls_reload_seconds = 60;
  int64_t max_sessions = 10000;
  int64_t max_sessions_per_ip = 50;
  int64_t greet_pause_ms = 300;
  int64_t max_recipients = 1000;
  int64_t max_message_size = 52428800;
  int64_t max_line = 512;
  int64_t idle_timeout_seconds = 300;
  int64_t soft_error_limit = 10;
  int64_t hard_error_limit = 20;
  int64_t junk_command_limit = 100;
  int64_t error_delay_ms = 1000;
  std::string postmaster_domain;
  int64_t shutdown_grace_seconds = 30;
  // STARTTLS: offered when both files are set (PEM; re-read when they change).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_min_version = "1.2";  // 1.2 | 1.3
  std::string tls_ciphers;              // TLS 1.2 cipher list; "" = OpenSSL default
  int64_t tls_handshake_timeout_seconds = 30;
  int64_t tls_reload_check_seconds = 5;
  std::string log_level = "info";
  std::string log_format = "kv";  // kv | json
  // The decision log (edge/decision_log.h): how addresses appear in it.
  std::string log_recipients = "clear";  // clear | hash | none
  std::string log_recipients_key_file;   // hash: the HMAC key (a file; chart: a Secret)
  DecisionLog decision_log;              // built from the two above by parse_config
  // Back-end relay (RFC 5321 §4.5.3.2 defaults).
  int64_t backend_connect_timeout_ms = 30000;
  int64_t backend_command_timeout_seconds = 300;
  int64_t backend_data_init_timeout_seconds = 120;
  int64_t backend_data_block_timeout_seconds = 180;
  int64_t backend_data_end_timeout_seconds = 600;
  int64_t backend_pool_max_idle = 8;
  int64_t backend_pool_idle_seconds = 60;
  // Connections in use per back-end "host:port" by this process (0 = no cap).
  int64_t backend_max_connections = 100;
  // STARTTLS towards back-ends (common/tls_client.h).
  std::string backend_tls = "none";  // none | opportunistic | required
  bool backend_tls_verify = false;
  std::string backend_tls_ca_file;
  std::string backend_tls_server_name;

  SessionConfig session() const;
  BackendTimeouts backend_timeouts() const;
  TlsServerSettings tls_settings() const;
  TlsClientSettings backend_tls_settings() const;
  grpc_tls::ClientTls directory_tls() const;
};

// Parses argv/environment/file into `config`. Returns "" or an error message;
// sets *help to the help text when --help was given.
std::string parse_config(int argc, const char* const* argv, EdgeConfig* config, std::string* help);

// Splits "host:port" or "[v6]:port". Returns false when malformed.
bool split_host_port(const std::string& in, std::string* host, uint16_t* port);

}  // namespace doorman::edge
