#include "tests/support/postfix_server.h"
#include "tests/support/smtp_client.h"

#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace doorman::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPostfix = "/usr/sbin/postfix";
constexpr const char* kMaster = "/usr/lib/postfix/sbin/master";

// Postfix waits (300 ms steps) until a freshly written main.cf is a little
// older than "now" (its file-system clock check), so configuration files
// are back-dated by a minute.
bool write_file(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) return false;
  }
  timespec times[2];
  clock_gettime(CLOCK_REALTIME, &times[0]);
  times[0].tv_sec -= 60;
  times[1] = times[0];
  return utimensat(AT_FDCWD, path.c_str(), times, 0) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The services this instance needs; nothing chrooted.
std::string master_cf(int port) {
  return "127.0.0.1:" + std::to_string(port) +
         " inet n - n - - smtpd\n"
         "pickup    unix  n - n 60    1 pickup\n"
         "cleanup   unix  n - n -     0 cleanup\n"
         "qmgr      unix  n - n 300   1 qmgr\n"
         "rewrite   unix  - - n -     - trivial-rewrite\n"
         "bounce    unix  - - n -     0 bounce\n"
         "defer     unix  - - n -     0 bounce\n"
         "trace     unix  - - n -     0 bounce\n"
         "verify    unix  - - n -     1 verify\n"
         "flush     unix  n - n 1000? 0 flush\n"
         "proxymap  unix  - - n -     - proxymap\n"
         "proxywrite unix - - n -     1 proxymap\n"
         "smtp      unix  - - n -     - smtp\n"
         "relay     unix  - - n -     - smtp\n"
         "showq     unix  n - n -     - showq\n"
         "error     unix  - - n -     - error\n"
         "retry     unix  - - n -     - error\n"
         "discard   unix  - - n -     - discard\n"
         "local     unix  - n n -     - local\n"
         "virtual   unix  - n n -     - virtual\n"
         "lmtp      unix  - - n -     - lmtp\n"
         "anvil     unix  - - n -     1 anvil\n"
         "scache    unix  - - n -     1 scache\n"
         "tlsmgr    unix  - - n 1000? 1 tlsmgr\n"  // STARTTLS, when a test configures smtpd_tls_*
         "postlog   unix-dgram n - n - 1 postlogd\n";
}

}  // namespace

PostfixServer::~PostfixServer() {
  stop();
  if (!dir_.empty()) remove_tree(dir_);
}

bool PostfixServer::available(std::string* why) {
  if (access(kPostfix, X_OK) != 0 || access(kMaster, X_OK) != 0) {
    *why = "postfix is not installed (scripts/setup.sh installs it)";
    return false;
  }
  if (geteuid() != 0) {
    *why = "a private Postfix instance needs root";
    return false;
  }
  if (getpwnam("postfix") == nullptr || getgrnam("postdrop") == nullptr) {
    *why = "user postfix or group postdrop missing";
    return false;
  }
  return true;
}

bool PostfixServer::write_users(const std::vector<std::string>& users) {
  std::string table;
  for (const auto& u : users) table += u + "@" + domain_ + " " + domain_ + "/" + u + "/\n";
  return write_file(dir_ + "/etc/vmailbox", table);
}

bool PostfixServer::start(std::string domain, std::vector<std::string> users, std::string* error,
                          std::vector<std::string> extra_config, std::chrono::milliseconds timeout) {
  std::string why;
  if (!available(&why)) {
    *error = why;
    return false;
  }
  if (master_.running()) {
    *error = "already running";
    return false;
  }
  domain_ = std::move(domain);
  if (dir_.empty()) dir_ = make_temp_dir("doorman-postfix");
  port_ = free_tcp_port();
  const passwd* pw = getpwnam("postfix");
  const uid_t uid = pw->pw_uid;
  const gid_t gid = pw->pw_gid;
  std::error_code ec;
  for (const char* sub : {"etc", "spool", "data", "mail"}) fs::create_directories(dir_ + "/" + sub, ec);
  // The temp dir itself must be reachable by the postfix user.
  chmod(dir_.c_str(), 0755);
  if (chown((dir_ + "/data").c_str(), uid, gid) != 0 || chown((dir_ + "/mail").c_str(), uid, gid) != 0) {
    *error = "cannot chown data/mail directories to postfix";
    return false;
  }
  std::string main_cf =
      "compatibility_level = 3.6\n"
      "queue_directory = " + dir_ + "/spool\n"
      "data_directory = " + dir_ + "/data\n"
      "mail_owner = postfix\n"
      "setgid_group = postdrop\n"
      "myhostname = backend.test\n"
      "mydomain = backend.test\n"
      "myorigin = backend.test\n"
      "mydestination =\n"
      "inet_interfaces = loopback-only\n"
      "inet_protocols = ipv4\n"
      "mynetworks = 127.0.0.0/8\n"
      "smtpd_relay_restrictions = reject_unauth_destination\n"
      "smtpd_recipient_restrictions =\n"
      "virtual_mailbox_domains = " + domain_ + "\n"
      "virtual_mailbox_base = " + dir_ + "/mail\n"
      "virtual_mailbox_maps = texthash:" + dir_ + "/etc/vmailbox\n"
      "virtual_uid_maps = static:" + std::to_string(uid) + "\n"
      "virtual_gid_maps = static:" + std::to_string(gid) + "\n"
      "alias_maps =\n"
      "alias_database =\n"
      "local_recipient_maps =\n"
      "maillog_file = " + dir_ + "/maillog\n"
      "maillog_file_prefixes = " + dir_ + "\n"
      "smtp_host_lookup = native\n"
      "disable_dns_lookups = yes\n"
      "smtpd_peername_lookup = no\n"
      "biff = no\n"
      "smtputf8_enable = no\n"
      "smtpd_banner = $myhostname ESMTP\n";
  for (const auto& line : extra_config) main_cf += line + "\n";
  if (!write_file(dir_ + "/etc/main.cf", main_cf) || !write_file(dir_ + "/etc/master.cf", master_cf(port_)) ||
      !write_users(users)) {
    *error = "cannot write the configuration in " + dir_;
    return false;
  }
  // The queue directories as postfix-files(5) wants them (what `postfix
  // check` would create, without its two seconds).
  const group* postdrop = getgrnam("postdrop");
  struct QueueDir {
    const char* name;
    bool postfix_owned;
    gid_t group;
    mode_t mode;
  };
  const QueueDir queue_dirs[] = {
      {"active", true, 0, 0700},   {"bounce", true, 0, 0700},   {"corrupt", true, 0, 0700},
      {"defer", true, 0, 0700},    {"deferred", true, 0, 0700}, {"flush", true, 0, 0700},
      {"hold", true, 0, 0700},     {"incoming", true, 0, 0700}, {"private", true, 0, 0700},
      {"maildrop", true, postdrop->gr_gid, 0730},                {"public", true, postdrop->gr_gid, 0710},
      {"pid", false, 0, 0755},     {"saved", true, 0, 0700},    {"trace", true, 0, 0700},
  };
  chmod((dir_ + "/spool").c_str(), 0755);
  for (const auto& q : queue_dirs) {
    std::string path = dir_ + "/spool/" + q.name;
    fs::create_directories(path, ec);
    if (chown(path.c_str(), q.postfix_owned ? uid : 0, q.group) != 0 || chmod(path.c_str(), q.mode) != 0) {
      *error = "cannot prepare " + path;
      return false;
    }
  }
  // The port was free when picked, but another process of a parallel test
  // may take it before master binds it: then the port answers, but not with
  // our banner. Such a start is retried on a fresh port.
  for (int attempt = 0;; ++attempt) {
    if (!write_file(dir_ + "/etc/master.cf", master_cf(port_))) {
      *error = "cannot write master.cf in " + dir_;
      return false;
    }
    if (!master_.start({kMaster, "-c", dir_ + "/etc", "-d"}, dir_ + "/master.out")) {
      *error = "cannot start " + std::string(kMaster);
      return false;
    }
    if (!wait_for_port(port_, timeout)) {
      *error = "postfix did not listen on 127.0.0.1:" + std::to_string(port_) + ": " + master_.read_log() + log();
      stop();
      return false;
    }
    SmtpClient probe;
    std::string banner = probe.connect(port_) ? probe.reply(static_cast<int>(timeout.count())) : "";
    probe.close();
    if (banner.rfind("220 backend.test", 0) == 0) return true;
    stop();
    if (attempt == 2) {
      *error = "127.0.0.1:" + std::to_string(port_) + " is not our postfix (banner '" + banner + "'): " +
               master_.read_log();
      return false;
    }
    port_ = free_tcp_port();
  }
}

bool PostfixServer::set_users(std::vector<std::string> users) {
  if (!write_users(users)) return false;
  if (!master_.signal(SIGHUP)) return false;
  // master re-reads its configuration and tells idle daemons to exit.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return true;
}

void PostfixServer::stop() { master_.stop(std::chrono::seconds(5)); }

std::vector<std::string> PostfixServer::delivered_messages(const std::string& user) const {
  std::vector<std::pair<fs::file_time_type, std::string>> files;
  std::error_code ec;
  std::string base = dir_ + "/mail/" + domain_;
  if (!fs::exists(base, ec)) return {};
  for (auto it = fs::recursive_directory_iterator(base, ec); it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (!it->is_regular_file()) continue;
    fs::path p = it->path();
    std::string parent = p.parent_path().filename().string();
    if (parent != "new" && parent != "cur") continue;
    if (!user.empty() && p.parent_path().parent_path().filename().string() != user) continue;
    files.emplace_back(fs::last_write_time(p, ec), p.string());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(read_file(f.second));
  return out;
}

std::vector<std::string> PostfixServer::delivered_messages() const { return delivered_messages(std::string()); }

bool PostfixServer::wait_for_delivered(size_t n, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (delivered_messages().size() >= n) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string PostfixServer::log() const { return dir_.empty() ? "" : read_file(dir_ + "/maillog"); }

}  // namespace doorman::test
