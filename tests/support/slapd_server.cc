#include "tests/support/slapd_server.h"

#include <signal.h>

#include <fstream>
#include <thread>

namespace doorman::test {
namespace {


bool write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return f.good();
}

std::string base_entries() {
  return std::string("dn: ") + kLdapSuffix + "\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n"
         "dn: ou=people," + kLdapSuffix + "\nobjectClass: organizationalUnit\nou: people\n\n"
         "dn: " + kSyncBindDn + "\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: sync\nsn: sync\n"
         "userPassword: " + kSyncPassword + "\n\n";
}

}  // namespace

std::string ldap_user(const std::string& uid, const std::string& mail, const std::vector<std::string>& proxy_addresses,
                      bool disabled) {
  std::string e = "dn: uid=" + uid + ",ou=people," + kLdapSuffix + "\nobjectClass: user\nuid: " + uid + "\ncn: " + uid +
                  "\nsn: " + uid + "\n";
  if (!mail.empty()) e += "mail: " + mail + "\n";
  for (const auto& p : proxy_addresses) e += "proxyAddresses: " + p + "\n";
  e += std::string("userAccountControl: ") + (disabled ? "514" : "512") + "\n\n";
  return e;
}

SlapdServer::~SlapdServer() {
  stop();
  remove_tree(dir_);
}

bool SlapdServer::start(const std::string& ldif, SlapdOptions options, std::chrono::milliseconds timeout) {
  dir_ = make_temp_dir("doorman-slapd");
  if (dir_.empty()) {
    error_ = "cannot create a temp dir";
    return false;
  }
  run({"mkdir", "-p", dir_ + "/data"});
  std::string conf = "include /etc/ldap/schema/core.schema\ninclude /etc/ldap/schema/cosine.schema\n"
                     "include /etc/ldap/schema/inetorgperson.schema\ninclude " DOORMAN_AD_SCHEMA "\n"
                     "pidfile " + dir_ + "/slapd.pid\nargsfile " + dir_ + "/slapd.args\n"
                     "modulepath /usr/lib/ldap\nmoduleload back_mdb\n";
  // slapd's default (500) would also cap paged searches; paging always reads everything here.
  const std::string n = options.size_limit > 0 ? std::to_string(options.size_limit) : "unlimited";
  conf += "sizelimit size.soft=" + n + " size.hard=" + n + " size.pr=" + n + " size.prtotal=unlimited\n";
  if (!options.tls_cert.empty())
    conf += "TLSCACertificateFile " + options.tls_ca + "\nTLSCertificateFile " + options.tls_cert +
            "\nTLSCertificateKeyFile " + options.tls_key + "\n";
  conf += std::string("database mdb\nmaxsize 1073741824\nsuffix \"") + kLdapSuffix + "\"\nrootdn \"cn=admin," +
          kLdapSuffix + "\"\nrootpw admin-secret\ndirectory " + dir_ + "/data\nindex objectClass eq\n";
  if (!write(dir_ + "/slapd.conf", conf) ||
      !write(dir_ + "/data.ldif", base_entries() + ldif) || !write(password_file(), kSyncPassword) ||
      !write(dir_ + "/admin-password", "admin-secret")) {
    error_ = "cannot write the slapd files";
    return false;
  }
  RunResult load = run({"/usr/sbin/slapadd", "-q", "-f", dir_ + "/slapd.conf", "-l", dir_ + "/data.ldif"},
                       std::chrono::seconds(120));
  if (load.exit_code != 0) {
    error_ = "slapadd failed: " + load.err + load.out;
    return false;
  }
  if (options.ldaps && !options.tls_cert.empty()) ldaps_port_ = -1;
  return launch(timeout);
}

bool SlapdServer::launch(std::chrono::milliseconds timeout) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (port_ == 0 || attempt > 0) port_ = free_tcp_port();
    if (ldaps_port_ != 0 && (ldaps_port_ < 0 || attempt > 0)) ldaps_port_ = free_tcp_port();
    std::string listeners = url() + "/";
    if (ldaps_port_ > 0) listeners += " " + ldaps_url() + "/";
    if (!process_.start({"/usr/sbin/slapd", "-d", "0", "-f", dir_ + "/slapd.conf", "-h", listeners},
                        dir_ + "/slapd.log")) {
      error_ = "cannot start slapd";
      return false;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline && process_.running()) {
      if (wait_for_port(port_, std::chrono::milliseconds(100)) &&
          (ldaps_port_ <= 0 || wait_for_port(ldaps_port_, std::chrono::milliseconds(100))))
        return true;
    }
    error_ = "slapd did not listen on port " + std::to_string(port_) + ": " + process_.read_log();
    process_.stop();
    if (restart_keeps_port_) break;
  }
  return false;
}

bool SlapdServer::restart(std::chrono::milliseconds timeout) {
  stop();
  restart_keeps_port_ = true;
  bool ok = launch(timeout);
  restart_keeps_port_ = false;
  return ok;
}

void SlapdServer::stop() { process_.stop(); }

void SlapdServer::kill() {
  process_.signal(SIGKILL);
  process_.stop();
}

std::string SlapdServer::modify(const std::string& ldif) const {
  RunResult r = run({"ldapmodify", "-x", "-H", url(), "-D", std::string("cn=admin,") + kLdapSuffix, "-y",
                     dir_ + "/admin-password"},
                    std::chrono::seconds(30), ldif);
  return r.exit_code == 0 ? "" : "ldapmodify failed (" + std::to_string(r.exit_code) + "): " + r.err + r.out;
}

}  // namespace doorman::test
