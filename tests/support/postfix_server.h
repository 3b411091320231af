// Test support: a real, private Postfix instance as an SMTP back-end on
// 127.0.0.1:<free port>, for callout and live-relay tests.
//
// start() writes a complete configuration into a temp dir (its own
// config_directory, queue_directory, data_directory, maillog file), creates
// the queue directories as postfix-files(5) wants them, then runs `/usr/lib/postfix/sbin/master -c DIR -d` (not
// daemonised) as a Process (process.h), in its own process group. stop()
// sends SIGTERM to the master by PID, which stops every Postfix daemon of
// this instance (master kills its process group), and waits for it. It never
// touches another Postfix (no pkill, no /etc/postfix).
//
// What the instance does:
//   - listens on 127.0.0.1:port() only (inet_interfaces = loopback-only,
//     inet_protocols = ipv4), banner "220 backend.test ESMTP"
//   - guards one domain as a Postfix virtual mailbox domain, with a recipient
//     table (texthash:, no postmap) of the given users: a known user gets
//     "250 2.1.5 Ok", an unknown one "550 5.1.1 <u@d>: Recipient address
//     rejected: User unknown in virtual mailbox table" at RCPT; any other
//     domain "554 5.7.1 <u@other>: Relay access denied"
//     (smtpd_relay_restrictions = reject_unauth_destination)
//   - delivers accepted mail to maildirs under dir()/mail/<domain>/<user>/
//     (delivered_messages() reads them)
//   - needs no DNS (disable_dns_lookups, smtp_host_lookup = native,
//     smtpd_peername_lookup = no), logs to dir()/maillog (postlogd)
//   - keeps Postfix's defaults otherwise, including smtpd_soft_error_limit
//     (10: each further error costs smtpd_error_sleep_time 1 s) and
//     smtpd_hard_error_limit (20 -> 421 and disconnect); change them with
//     extra_config, e.g. {"smtpd_hard_error_limit = 5"}.
//
// Requirements: Debian's postfix package (scripts/setup.sh), run as root
// (master binds and changes to the postfix user). available() says whether
// it can run here, so tests can GTEST_SKIP. Start-up takes about half a
// second. Not thread-safe: use from the test's thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace doorman::test {

class PostfixServer {
 public:
  PostfixServer() = default;
  ~PostfixServer();
  PostfixServer(const PostfixServer&) = delete;
  PostfixServer& operator=(const PostfixServer&) = delete;

  // True when Postfix is installed and we are root; otherwise `why` says why.
  static bool available(std::string* why);

  // `users` are local parts of `domain` (e.g. {"alice", "bob"}).
  // `extra_config` lines are appended to main.cf (later lines win).
  // Returns false with `error` filled when Postfix does not answer within
  // `timeout`.
  bool start(std::string domain, std::vector<std::string> users, std::string* error,
             std::vector<std::string> extra_config = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Rewrites the recipient table and reloads Postfix (SIGHUP to master).
  // New SMTP sessions see the new table at once; a session that is already
  // open keeps the old one until it ends.
  bool set_users(std::vector<std::string> users);
  void stop();
  bool running() { return master_.running(); }

  int port() const { return port_; }
  const std::string& domain() const { return domain_; }
  const std::string& dir() const { return dir_; }

  // Every delivered message (raw RFC 5322 text as Postfix stored it, with a
  // Return-Path and Received header prepended, LF line ends), oldest first.
  std::vector<std::string> delivered_messages() const;
  // Same, for one user (local part).
  std::vector<std::string> delivered_messages(const std::string& user) const;
  // Waits until at least `n` messages are delivered.
  bool wait_for_delivered(size_t n, std::chrono::milliseconds timeout) const;
  // The maillog (one line per Postfix event).
  std::string log() const;

 private:
  bool write_users(const std::vector<std::string>& users);

  Process master_;
  int port_ = 0;
  std::string domain_;
  std::string dir_;
};

}  // namespace doorman::test
