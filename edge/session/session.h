// The edge's SMTP server session as a pure state machine (no sockets, no
// timers, no threads). The Asio connection feeds it client bytes and the
// results of the asynchronous work it asked for; after each call it performs
// the Actions the session returns: write these replies (maybe after a delay),
// ask the directory about these recipients, close.
//
// Sees untrusted bytes. Protected by: the command line limit (512 octets incl.
// CRLF), a bounded input buffer (at most one line limit plus one read while
// in command mode), the recipient limit, the message size limit, and the error
// counters (soft limit: replies delayed; hard limit: 421 4.7.0 and close).
//
// Standards: RFC 5321 (commands, replies, §4.5.1 postmaster, §4.5.3 limits),
// RFC 2920 (PIPELINING: replies in order, a group of RCPTs verified in one
// directory call, replies flushed when the input is drained), RFC 1870 (SIZE),
// RFC 6152 (8BITMIME), RFC 2034 (ENHANCEDSTATUSCODES).
//
// Message relay to the back-end is issue #3: until then the message is read
// (with the smuggling-safe DATA reader) and answered with a 451 temporary
// failure, so nothing is acknowledged that has not been delivered.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/data_reader.h"
#include "smtp/reply.h"

namespace doorman::edge {

struct SessionConfig {
  std::string hostname = "doorman.localdomain";  // greeting, EHLO, Received
  size_t max_line = 512;                  // command line incl. CRLF
  size_t max_recipients = 1000;           // per transaction (RFC minimum 100)
  uint64_t max_message_size = 52428800;   // SIZE, 50 MiB
  int soft_error_limit = 10;              // errors before replies are delayed
  int hard_error_limit = 20;              // errors before 421 and close
  std::chrono::milliseconds error_delay{1000};  // delay per reply past the soft limit
  // Domain that a bare "RCPT TO:<postmaster>" is checked as; empty: reject it.
  std::string postmaster_domain;
};

// One recipient of a directory request.
struct RecipientRequest {
  std::string mailbox;  // "local@domain", canonical form
};

// What the directory answered for one recipient (mirrors doorman.v1.Verdict
// without depending on protobuf).
struct Verdict {
  enum class Decision { kAccept, kReject, kDefer };
  Decision decision = Decision::kDefer;
  smtp::Reply reply;
  std::string reason;  // internal, for logs
  std::string source;  // "list", "cache", "probe", "policy", "error"
  std::vector<std::string> route;
};

struct CheckRequest {
  std::string helo;
  std::string mail_from;
  std::vector<RecipientRequest> recipients;
};

// What the shell must do after a call into the session, in this order:
// wait `delay`, write `output`, start `check` (if any), close if `close`.
struct Actions {
  std::string output;
  std::chrono::milliseconds delay{0};
  std::optional<CheckRequest> check;
  bool close = false;
};

// End-of-session counters, for the summary log line.
struct SessionStats {
  uint64_t transactions = 0;
  uint64_t rcpt_accepted = 0;
  uint64_t rcpt_rejected = 0;
  uint64_t rcpt_deferred = 0;
  uint64_t errors = 0;
  uint64_t directory_calls = 0;
};

class Session {
 public:
  explicit Session(const SessionConfig& config);

  // The greeting.
  Actions start();
  // Bytes from the client.
  Actions feed(std::string_view bytes);
  // The directory's verdicts for the last CheckRequest, in its order.
  Actions on_verdicts(std::vector<Verdict> verdicts);
  // The directory could not be asked (unavailable, deadline): 451 4.4.3.
  Actions on_check_failed();
  // The client was idle for too long: 421 4.4.2 and close.
  Actions on_timeout();
  // The server is stopping: 421 4.3.2 now if idle, else after the current
  // transaction ends.
  Actions on_shutdown();

  bool waiting() const { return waiting_; }  // a check is outstanding
  bool in_transaction() const { return mail_from_.has_value(); }
  bool closed() const { return closed_; }
  const SessionStats& stats() const { return stats_; }
  // Bytes buffered but not yet processed (bounded; for tests and limits).
  size_t buffered() const { return in_.size(); }

 private:
  enum class Mode { kCommand, kData };
  struct Slot {
    bool ready = false;
    std::string wire;
  };

  void process(Actions& a);
  bool handle_line(std::string_view line, Actions& a);  // false: stop processing
  void handle_data(Actions& a);
  void reply(const smtp::Reply& r);
  void reply_error(const smtp::Reply& r);  // counts as a client error
  void reply_raw(std::string wire);
  void finish(Actions& a);
  void reset_transaction();
  void close_with(const smtp::Reply& r);

  void cmd_ehlo(std::string_view arg, bool extended);
  void cmd_mail(std::string_view arg);
  void cmd_rcpt(std::string_view arg);
  bool cmd_data(std::string_view arg, bool more_input);

  const SessionConfig& config_;
  std::string in_;
  std::vector<Slot> slots_;  // replies in command order, first unsent at 0
  size_t slots_sent_ = 0;    // slots already flushed: absolute index of slots_[0]
  Mode mode_ = Mode::kCommand;
  bool skipping_long_line_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
  bool shutting_down_ = false;
  bool waiting_ = false;
  int errors_ = 0;

  std::string helo_;
  bool extended_ = false;
  std::optional<std::string> mail_from_;
  size_t rcpt_accepted_ = 0;
  // The RCPT group being collected (absolute slot numbers), and its requests.
  std::vector<size_t> group_slots_;
  std::vector<RecipientRequest> group_;
  std::optional<smtp::DataReader> data_;
  std::string data_out_;  // content of the current message (relay is #3)
  SessionStats stats_;
};

}  // namespace doorman::edge
