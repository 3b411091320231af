// The edge's SMTP server session as a pure state machine (no sockets, no
// timers, no threads). The Asio connection feeds it client bytes and the
// results of the asynchronous work it asked for; after each call it performs
// the Actions the session returns: write these replies (maybe after a delay),
// ask the directory about these recipients, drive the back-end relay, close.
//
// Sees untrusted bytes. Protected by: the command line limit (512 octets incl.
// CRLF), a bounded input buffer (the shell reads only while the session waits
// for nothing, so at most one read plus one partial line is buffered), the
// recipient limit, the message size limit, and the error counters (soft
// limit: replies delayed; hard limit: 421 4.7.0 and close).
//
// Live relay (never queue): recipients the directory accepts are sent to the
// back-end in the same session, and the client sees the back-end's verdict
// (its class and enhanced code, our own generic text). Message content is
// streamed one chunk at a time: the next chunk is read from the client only
// after the previous one was written to the back-end (back-pressure). Only a
// back-end 250 at end of data becomes our 250. A bad message (bare CR/LF,
// NUL, over the size limit) aborts the back-end transaction without the
// final dot.
//
// Every recipient's reply is also reported as an RcptDecision
// (Actions::decisions, issue #14): the shell writes the decision log
// (edge/decision_log.h). A recipient the directory accepted - a shadow-mode
// domain's would-be refusal too - is decided, and counted as an error when
// refused, by the back-end's answer.
//
// Standards: RFC 5321 (commands, replies, §4.4 Received, §4.5.1 postmaster,
// §4.5.3 limits), RFC 2920 (PIPELINING: replies in order, a group of RCPTs
// verified in one directory call, replies flushed when the input is drained),
// RFC 1870 (SIZE), RFC 6152 (8BITMIME), RFC 2034 (ENHANCEDSTATUSCODES).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edge/session/outcomes.h"
#include "smtp/command.h"
#include "smtp/data_reader.h"
#include "smtp/reply.h"

namespace doorman::edge {

// Receives events for metrics; called on the session's thread. Every method
// must be cheap and must not call back into the session.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  virtual void command(std::string_view verb) = 0;  // "ehlo", ..., "other"
  virtual void reply(int code) = 0;
  virtual void recipient(RcptVerdict verdict, RcptSource source) = 0;
  virtual void relay(RelayOutcome outcome) = 0;
};

// Recipients in one directory call at most (the directory refuses more:
// directory/service/recipient_service.h); a longer pipelined run of RCPTs
// is asked about in several calls.
inline constexpr size_t kMaxCheckGroup = 1000;

struct SessionConfig {
  std::string hostname = "doorman.localdomain";  // greeting, EHLO, Received
  size_t max_line = 512;                  // command line incl. CRLF
  size_t max_recipients = 1000;           // per transaction (RFC minimum 100)
  uint64_t max_message_size = 52428800;   // SIZE, 50 MiB
  int soft_error_limit = 10;              // errors before replies are delayed
  int hard_error_limit = 20;              // errors before 421 and close
  int junk_command_limit = 100;           // NOOP/RSET/VRFY/HELP before each counts as an error
  std::chrono::milliseconds error_delay{1000};  // delay per reply past the soft limit
  // Domain that a bare "RCPT TO:<postmaster>" is checked as; empty: the
  // directory decides (its --postmaster-domain, else the first guarded domain).
  std::string postmaster_domain;
  // STARTTLS (RFC 3207) is offered: the shell has a certificate and key.
  bool starttls = false;
  // RFC 5322 date for Received headers; injectable for tests.
  std::function<std::string()> now;
  SessionObserver* observer = nullptr;  // optional
};

// Who is on the other end; for the directory request and the Received header.
struct SessionInfo {
  std::string id;
  std::string client_ip;
};

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
  RcptSource source = RcptSource::kError;
  std::vector<std::string> route;
  // Harvest defence: hold this reply back this long (the directory decides).
  std::chrono::milliseconds delay{0};
  // Issue #14, for the decision log: why; the refusal a shadow-mode domain
  // did not send (then decision is kAccept); the callout cache's age; the
  // named address source (LDAP sync) when the directory gives one.
  RcptReason why = RcptReason::kUnspecified;
  std::optional<RcptReason> would_reject;
  int would_code = 0;
  std::optional<std::chrono::milliseconds> cache_age;
  std::string source_name;
};

// One recipient's decision as the client gets it (issue #14: the decision
// log; edge/decision_log.h writes it). A recipient the directory accepted is
// decided by the back-end's answer.
struct RcptDecision {
  std::string mailbox;  // canonical form, as sent to the directory
  std::string sender;   // the transaction's reverse-path, "" for <>
  RcptVerdict verdict = RcptVerdict::kDeferred;
  smtp::Reply reply;    // what the client got
  RcptReason reason = RcptReason::kUnspecified;
  RcptSource source = RcptSource::kError;
  std::optional<RcptReason> would_reject;  // shadow mode: the refusal enforcement would have sent
  int would_code = 0;
  std::optional<std::chrono::milliseconds> cache_age;
  std::string source_name;
};

struct CheckRequest {
  std::string helo;
  std::string mail_from;
  std::vector<RecipientRequest> recipients;
};

// One step of the back-end relay. Every kind but kAbort and kRelease is
// answered by exactly one on_relay() call.
struct RelayOp {
  enum class Kind {
    kRcpts,    // [open a transaction: MAIL FROM] then RCPT each of `rcpts`
    kData,     // DATA; result: the back-end's reply (354 expected)
    kChunk,    // write `bytes`; result: written or lost
    kEnd,      // write `bytes` then ".\r\n"; result: the final reply
    kAbort,    // close the back-end connection without the final dot
    kRelease,  // the transaction is over: RSET and return it to the pool
  };
  explicit RelayOp(Kind k = Kind::kRcpts) : kind(k) {}
  Kind kind;
  bool open = false;                // kRcpts: begin with MAIL FROM
  std::vector<std::string> route;   // kRcpts with open: back-ends in priority order
  std::string mail_from;            // kRcpts with open ("" for <>)
  std::optional<uint64_t> size;     // kRcpts with open: client's SIZE=
  bool body_8bit = false;           // kRcpts with open: client's BODY=8BITMIME
  std::vector<std::string> rcpts;   // kRcpts
  std::string bytes;                // kChunk, kEnd
};

struct RelayResult {
  enum class Status {
    kOk,
    kUnreachable,  // no back-end of the route could be reached: 451 4.4.1
    kLost,         // connection lost or timed out: 451 4.4.2
    kBusy,         // every back-end of the route is at its connection limit: 451 4.4.5
  };
  Status status = Status::kOk;
  // kRcpts: one reply per recipient (a refused MAIL FROM is reported as that
  // reply for each); kData/kEnd: one reply; kChunk: none.
  std::vector<smtp::Reply> replies;
  bool mail_refused = false;  // kRcpts: the back-end refused MAIL FROM
};

// One transaction, for the summary log line: counts, size and outcome.
struct TransactionSummary {
  std::string sender;  // reverse-path ("" for <>); log it at debug level only
  uint64_t accepted = 0;
  uint64_t rejected = 0;
  uint64_t deferred = 0;
  uint64_t size = 0;   // message octets received (0 when there was no DATA)
  // delivered, rejected, deferred, lost, aborted, reset, closed
  std::string result;
  int code = 0;        // the reply to the final dot or DATA (0: none)
};

// What the shell must do after a call into the session, in this order:
// perform `relay` and start `check` (if any), wait `delay`, write `output`,
// close if `close`; with `start_tls`, once `output` is written, do the TLS
// handshake as the server and report it with on_tls() or on_tls_failed().
struct Actions {
  std::string output;
  std::chrono::milliseconds delay{0};
  std::optional<CheckRequest> check;
  std::vector<RelayOp> relay;
  bool close = false;
  SessionEnd end = SessionEnd::kServerClosed;  // with `close`: why
  bool start_tls = false;  // after "220 Ready to start TLS"
  bool transaction_started = false;               // MAIL FROM was accepted
  std::optional<TransactionSummary> transaction;  // a transaction ended
  // Recipients decided since the last Actions, in decision order.
  std::vector<RcptDecision> decisions;
};

// Counters for the summary log line.
struct SessionStats {
  uint64_t transactions = 0;   // ended with a reply to the final dot
  uint64_t delivered = 0;      // acknowledged with 250 (the back-end's 250)
  uint64_t rcpt_accepted = 0;
  uint64_t rcpt_rejected = 0;
  uint64_t rcpt_deferred = 0;
  uint64_t errors = 0;
  uint64_t directory_calls = 0;
  uint64_t bytes_relayed = 0;
};

class Session {
 public:
  Session(const SessionConfig& config, SessionInfo info);

  // The real client address, when a PROXY protocol header gave it (before start()).
  void set_client_ip(std::string ip) { info_.client_ip = std::move(ip); }
  Actions start();                              // the greeting
  Actions feed(std::string_view bytes);         // bytes from the client
  Actions on_verdicts(std::vector<Verdict> v);  // for the last CheckRequest
  Actions on_check_failed();                    // directory unreachable/late
  Actions on_relay(RelayResult result);         // for the pending RelayOp
  Actions on_timeout();                         // idle: 421 4.4.2, close
  Actions on_shutdown();                        // 421 4.3.2 when idle
  // The TLS handshake after STARTTLS succeeded; `description` is what the
  // Received header says, e.g. "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
  // (256/256 bits)". The session starts over: EHLO is required again.
  Actions on_tls(std::string description);
  Actions on_tls_failed();                      // the shell closes; no reply

  bool waiting() const { return pending_ != Pending::kNone; }
  bool in_data() const { return mode_ == Mode::kData; }
  bool in_transaction() const { return mail_from_.has_value(); }
  bool relay_open() const { return relay_open_; }
  // Gives back the capacity of buffers that are empty now, when the session
  // waits for a command (the shell calls it before each read; during DATA or
  // a pending check it does nothing); changes no behaviour.
  void release_idle_memory();
  bool closed() const { return closed_; }
  bool tls_active() const { return tls_active_; }
  const SessionStats& stats() const { return stats_; }
  size_t buffered() const { return in_.size(); }
  // Client bytes held by the session now (input and message data not yet
  // handed to the relay): bounded whatever the client sends.
  size_t held_bytes() const { return in_.size() + data_out_.size(); }

 private:
  enum class Mode { kCommand, kData };
  enum class Pending { kNone, kCheck, kRcpts, kData, kChunk, kEnd, kTls };
  struct Slot {
    bool ready = false;
    std::string wire;
  };
  struct RelayRcpt {
    size_t slot;
    std::string mailbox;
    RcptSource source;  // the directory's source, for metrics
    RcptDecision decision;  // the directory's part, completed by the back-end's answer
  };

  void process(Actions& a);
  // Each command line is parsed once, in process(), and handled here.
  void handle_command(const smtp::Command& c);
  bool cmd_data(std::string_view arg, bool more_input, Actions& a);
  bool cmd_starttls(std::string_view arg, Actions& a);
  void finish_data(Actions& a);
  void end_transaction(Actions& a, bool release, const char* result, int code = 0);
  void reply(const smtp::Reply& r);
  void reply_error(const smtp::Reply& r);
  void reply_raw(std::string wire);
  void set_slot(size_t slot, const smtp::Reply& r);
  // Forgets every reply after absolute slot `slot` (the session is closing).
  void drop_slots_after(size_t slot);
  size_t group_limit() const;  // recipients one directory call may carry now
  void count_junk();           // NOOP, RSET, VRFY, HELP
  bool count_error();          // one more error; true when it reaches the hard limit
  void finish(Actions& a);
  void close_with(const smtp::Reply& r, SessionEnd why);
  smtp::Reply too_many_errors() const;  // 421 4.7.0 at the hard error limit
  std::string received_header() const;
  void observe_recipient(RcptVerdict verdict, RcptSource source);
  void observe_relay(RelayOutcome outcome);
  // Logs (through Actions::decisions) what the client gets for a recipient.
  RcptDecision decision(RcptDecision d, RcptVerdict verdict, const smtp::Reply& reply, RcptReason reason,
                        RcptSource source) const;
  void decide(RcptDecision d, RcptVerdict verdict, const smtp::Reply& reply, RcptReason reason, RcptSource source);
  void decide(const std::string& mailbox, RcptVerdict verdict, const smtp::Reply& reply, RcptReason reason,
              RcptSource source);

  void cmd_ehlo(std::string_view arg, bool extended);
  void cmd_mail(std::string_view arg);
  void cmd_rcpt(std::string_view arg);

  const SessionConfig& config_;
  SessionInfo info_;
  std::string in_;
  std::vector<Slot> slots_;  // replies in command order, first unsent at 0
  size_t slots_sent_ = 0;    // slots already flushed: absolute index of slots_[0]
  Mode mode_ = Mode::kCommand;
  Pending pending_ = Pending::kNone;
  bool skipping_long_line_ = false;
  bool closed_ = false;
  bool close_after_flush_ = false;
  SessionEnd end_ = SessionEnd::kServerClosed;  // why close_after_flush_ was set
  bool shutting_down_ = false;
  int errors_ = 0;
  int junk_ = 0;  // NOOP, RSET, VRFY, HELP since the last delivered message

  std::string helo_;
  bool extended_ = false;
  bool tls_active_ = false;
  std::string tls_description_;  // for the Received header
  std::optional<std::string> mail_from_;
  std::optional<uint64_t> mail_size_;
  bool mail_8bit_ = false;
  size_t rcpt_accepted_ = 0;
  uint64_t tx_rejected_ = 0;
  uint64_t tx_deferred_ = 0;
  uint64_t tx_size_ = 0;
  bool tx_started_ = false;  // reported in the next Actions
  std::string single_rcpt_;  // for "for <rcpt>" in Received when there is one
  // The RCPT group being verified (absolute slot numbers) and its requests.
  std::vector<size_t> group_slots_;
  std::vector<RecipientRequest> group_;
  // Back-end transaction state.
  bool relay_open_ = false;
  std::vector<std::string> route_;
  std::vector<RelayRcpt> relay_group_;  // sent to the back-end, awaiting replies
  // Slots of the directory's rejections that follow a relayed recipient of
  // the same group: counted as errors when the back-end has answered.
  std::vector<size_t> uncounted_errors_;
  std::vector<RcptDecision> uncounted_decisions_;  // their decision log lines, same order
  std::optional<smtp::DataReader> data_;
  std::string data_out_;
  bool data_aborted_ = false;
  bool header_sent_ = false;
  std::chrono::milliseconds verdict_delay_{0};  // from the last verdicts, applied once
  uint64_t tx_seq_ = 0;  // numbers the messages of this session
  SessionStats stats_;
  std::vector<RcptDecision> decisions_;  // handed out by finish()
};

}  // namespace doorman::edge
