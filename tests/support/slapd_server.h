// Test support: a real OpenLDAP slapd (Debian's, /usr/sbin/slapd) on a free
// loopback port, for the LDAP sync tests and the benchmark.
//
// start() writes a slapd.conf into a temp dir (core, cosine and inetorgperson
// schemas plus tests/support/ad.schema, a small schema with Active Directory's
// proxyAddresses and userAccountControl attributes and its user, group and
// publicFolder classes), bulk-loads `ldif` with slapadd before slapd runs (25,000
// entries load in about a second), and runs `slapd -d 0 -h ldap://127.0.0.1:PORT/`
// in the foreground, kept by PID, until it accepts connections. The suffix
// is dc=example,dc=test with the entries dc=example,dc=test, ou=people and the
// service account cn=sync,dc=example,dc=test (password kSyncPassword, not the
// rootdn, so server limits apply to it). With `size_limit` N slapd answers at
// most N entries per search and per page, as Active Directory's MaxPageSize
// does, while paged searches may read everything. With TLS files it offers
// StartTLS, and with `ldaps` an ldaps:// listener too. stop() kills by PID and waits; restart() keeps port and data.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace doorman::test {

inline constexpr const char* kLdapSuffix = "dc=example,dc=test";
inline constexpr const char* kSyncBindDn = "cn=sync,dc=example,dc=test";
inline constexpr const char* kSyncPassword = "sync-secret";

struct SlapdOptions {
  int size_limit = 0;  // 0 = unlimited
  std::string tls_cert, tls_key, tls_ca;  // all set = StartTLS offered
  bool ldaps = false;                      // with the TLS files: also an ldaps:// listener
};

class SlapdServer {
 public:
  SlapdServer() = default;
  ~SlapdServer();
  SlapdServer(const SlapdServer&) = delete;
  SlapdServer& operator=(const SlapdServer&) = delete;

  // Writes the config, loads the base entries and `ldif` (more entries), starts.
  bool start(const std::string& ldif = "", SlapdOptions options = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Starts again on the same port with the same data.
  bool restart(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  void stop();
  void kill();  // SIGKILL, then wait: an LDAP server that dies
  Process& process() { return process_; }

  int port() const { return port_; }
  std::string url() const { return "ldap://127.0.0.1:" + std::to_string(port_); }
  std::string ldaps_url() const { return "ldaps://127.0.0.1:" + std::to_string(ldaps_port_); }
  const std::string& dir() const { return dir_; }
  // A file holding kSyncPassword (for bind_password_file).
  std::string password_file() const { return dir_ + "/sync-password"; }
  const std::string& error() const { return error_; }

  // ldapmodify as the rootdn (changetype records); returns "" or the error.
  std::string modify(const std::string& ldif) const;

 private:
  bool launch(std::chrono::milliseconds timeout);

  Process process_;
  bool restart_keeps_port_ = false;
  int port_ = 0;
  int ldaps_port_ = 0;  // 0 = no ldaps:// listener
  std::string dir_;
  std::string error_;
};

// An AD-style user entry under ou=people: uid, mail (optional) and
// proxyAddresses values ("SMTP:a@b", "smtp:c@d", "X500:...").
std::string ldap_user(const std::string& uid, const std::string& mail,
                      const std::vector<std::string>& proxy_addresses = {}, bool disabled = false);

}  // namespace doorman::test
