// Test fake: a scriptable, recording SMTP server on 127.0.0.1 (a "back-end").
//
// In-process, one accept thread plus one thread per connection, blocking
// sockets. By default it is a well-behaved ESMTP server (RFC 5321):
//   greeting  220 fake.test ESMTP
//   EHLO      250-fake.test + extensions (default PIPELINING, SIZE 104857600,
//             8BITMIME, ENHANCEDSTATUSCODES); HELO 250 fake.test
//   MAIL      250 2.1.0 Ok (503 5.5.1 before EHLO/HELO is NOT enforced)
//   RCPT      250 2.1.5 Ok for every address (503 5.5.1 without MAIL)
//   DATA      354 (554 5.5.1 without an accepted RCPT), then the message
//             until CRLF.CRLF (strict) and the data reply (default
//             "250 2.0.0 Ok: queued")
//   RSET 250 2.0.0, NOOP 250 2.0.0, QUIT 221 2.0.0 and close; anything else
//   500 5.5.2. Pipelined input works: every buffered line is handled in order,
//   and bytes after the end-of-data line are commands again.
// Command lines end at LF (a CR before it is stripped); a line over 64 KiB
// gets 500 5.5.2 and the connection is closed.
//
// Scripting: a responder sees every command line (without CRLF) and may
// return a FakeAction: a full reply text (with CRLF; may be multi-line), a
// delay before replying, and/or closing the connection (after the reply, if
// any). Its reply replaces the default one; the state follows the reply's
// code (a 2xx to MAIL opens a transaction, a 2xx to RCPT adds the recipient,
// a 354 to DATA enters the data phase). The responder is also called with the
// pseudo-line "<connect>" before the greeting (reply replaces the greeting;
// close = drop the connection) and "<data>" for the end-of-data reply
// (default: set_data_reply). Responders run on connection threads: keep them
// thread-safe.
//
// Recording: every byte received per connection (raw()), every transaction
// (MAIL accepted .. RSET/next MAIL/close), counters per verb. All accessors
// are thread-safe. Safe to call setters before start() (or between tests;
// changes apply to the next command handled).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace doorman::test {

struct FakeTransaction {
  size_t connection = 0;           // index into raw()
  std::string helo;                // EHLO/HELO argument
  std::string mail_from;           // text after "MAIL FROM:", incl. parameters
  std::vector<std::string> rcpts;  // text after "RCPT TO:" of accepted ones
  // Raw bytes between the 354 and the end-of-data line, exactly as received
  // (still dot-stuffed; the CRLF ending the last line is included, the
  // terminating "." line is not).
  std::string data;
  bool data_started = false;  // 354 sent
  bool completed = false;     // end-of-data seen and the data reply sent
};

struct FakeAction {
  std::optional<std::string> reply;  // full reply text incl. CRLF; nullopt = default
  std::chrono::milliseconds delay{0};
  bool close = false;  // close the connection (after sending `reply`, if any)
};

class FakeSmtpServer {
 public:
  using Responder = std::function<std::optional<FakeAction>(const std::string& line)>;

  FakeSmtpServer();
  ~FakeSmtpServer();
  FakeSmtpServer(const FakeSmtpServer&) = delete;
  FakeSmtpServer& operator=(const FakeSmtpServer&) = delete;

  // Binds 127.0.0.1:`port` (0 = a free one) and starts accepting.
  bool start(int port = 0);
  // Closes the listener and every connection, joins all threads. Idempotent.
  void stop();
  int port() const { return port_; }

  // nullopt from the responder (or no responder) = default behaviour.
  void set_responder(Responder r);
  void set_greeting(std::string full_reply);  // e.g. "220 mx ESMTP\r\n"
  void set_extensions(std::vector<std::string> ext);
  void set_data_reply(FakeAction a);
  // Also treat LF.LF, CR.CR, LF.CRLF, CRLF.LF, CR.LF, ... (shared/reference/
  // smuggling.md) as end of data, like a vulnerable server.
  void set_lenient_end_of_data(bool on);
  // Drops the connection once a DATA phase has received `bytes` bytes
  // (0 = never). The transaction stays completed=false.
  void set_close_during_data_after(size_t bytes);

  std::vector<FakeTransaction> transactions() const;
  size_t connections() const;
  size_t rcpt_commands() const { return commands("RCPT"); }
  size_t commands(const std::string& verb) const;  // upper-case verb: "MAIL"
  // Every RCPT argument ("<a@b>" plus parameters) in arrival order, with the
  // time it arrived (for rate tests).
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> rcpt_log() const;
  std::string raw(size_t connection) const;
  // Connections currently open.
  size_t open_connections() const;

  // Waits until `n` transactions are completed.
  bool wait_for_transactions(size_t n, std::chrono::milliseconds timeout) const;
  // Waits until `n` commands of `verb` were received.
  bool wait_for_commands(const std::string& verb, size_t n, std::chrono::milliseconds timeout) const;

 private:
  struct Conn;
  void accept_loop();
  void serve(std::shared_ptr<Conn> c);

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Responder responder_;
  std::string greeting_ = "220 fake.test ESMTP\r\n";
  std::vector<std::string> extensions_ = {"PIPELINING", "SIZE 104857600", "8BITMIME", "ENHANCEDSTATUSCODES"};
  FakeAction data_reply_{std::string("250 2.0.0 Ok: queued\r\n"), std::chrono::milliseconds(0), false};
  bool lenient_ = false;
  size_t close_after_ = 0;

  std::vector<FakeTransaction> transactions_;
  std::vector<std::string> raw_;
  std::map<std::string, size_t> verbs_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> rcpt_log_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::vector<std::thread> threads_;
  size_t open_ = 0;

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
};

}  // namespace doorman::test
