// The client side of an SMTP session, sans I/O: bytes from the server in,
// bytes to send and events out. One implementation for every Doorman client:
// the edge's live relay and the directory's callout probes, both driven by
// the Asio shell in common/smtp_client_connection.h.
//
// What it does: the greeting (220), EHLO with HELO fallback (a 5xx to EHLO),
// the EHLO keywords (PIPELINING, SIZE, 8BITMIME, STARTTLS), STARTTLS per the
// TLS policy and EHLO again afterwards (RFC 3207: the plaintext EHLO counts
// for nothing), then transactions: command lines sent pipelined when the
// server offers PIPELINING (RFC 2920), else one at a time, and raw bytes
// (message data) followed by a number of replies. What it does not: sockets,
// timers, TLS records (the shell does those and reports back).
//
// SECURITY: sees bytes from back-end servers (trusted more than SMTP clients,
// but bounded): replies are parsed by smtp::ReplyParser (2048 octets a line,
// 64 lines a reply); a reply nobody asked for, or plaintext that follows the
// 220 to STARTTLS (the STARTTLS injection of CVE-2011-0411), is a protocol
// error and the session fails.
//
// Use: start(); then repeatedly write take_output() to the server, read when
// wants_input() and feed() what arrives, and act on take_event(): kStartTls
// (do the handshake, then tls_done()), kOpen (ready for transactions),
// kReplies (the replies of the last transact()/send()), kFailed (close).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/reply_parser.h"

namespace doorman::smtp {

// STARTTLS policy (Postfix's smtp_tls_security_level none / may / encrypt).
enum class ClientTls { kNone, kOpportunistic, kRequired };

struct ServerExtensions {
  bool pipelining = false;
  bool size = false;
  bool eightbitmime = false;
  bool starttls = false;
};

// The EHLO keywords of an EHLO reply's lines (the first line is the
// greeting text, not a keyword).
ServerExtensions parse_ehlo_keywords(const std::vector<std::string>& lines);

class Client {
 public:
  enum class Failure {
    kNone,
    kRefused,   // greeting not 220, EHLO/HELO refused
    kTls,       // TLS required but not offered or refused, or the handshake failed
    kProtocol,  // malformed reply, unsolicited reply, plaintext after the 220 to STARTTLS
  };
  struct Event {
    enum class Kind { kNone, kStartTls, kOpen, kReplies, kFailed } kind = Kind::kNone;
    std::vector<ParsedReply> replies;  // kReplies: one per expected reply
    Failure failure = Failure::kNone;  // kFailed
    std::string detail;                // kFailed: for logs ("EHLO 421", "STARTTLS not offered")
  };

  Client(std::string helo_name, ClientTls tls);

  // Expects the greeting.
  void start();
  // Bytes received from the server. Processes every complete reply.
  void feed(std::string_view bytes);
  // The shell finished (ok) or failed the TLS handshake after kStartTls.
  void tls_done(bool ok, std::string detail = "");
  // Once open and idle: sends each line (CRLF added), pipelined when the
  // server offers PIPELINING, else one at a time; kReplies with one reply
  // per line when all have arrived.
  void transact(std::vector<std::string> lines);
  // Once open and idle: raw bytes (message data), then `replies` replies
  // (0: kReplies with none once taken, the write is the whole step).
  void send(std::string bytes, size_t replies);

  // Bytes to write now (empty when none).
  std::string take_output();
  bool has_output() const { return !out_.empty(); }
  // The next event, or kNone. Events come one at a time: each ends the step
  // that started it.
  Event take_event();
  // Waiting for server bytes (a reply is due).
  bool wants_input() const;

  bool open() const { return state_ == State::kReady || state_ == State::kBusy; }
  bool idle() const { return state_ == State::kReady; }
  bool failed() const { return state_ == State::kFailed; }
  const ServerExtensions& extensions() const { return ext_; }
  bool said_helo() const { return helo_only_; }
  // TLS is on (the shell's handshake succeeded).
  bool tls_active() const { return tls_active_; }
  // Opportunistic TLS: the code with which the server refused STARTTLS (the
  // session went on in plaintext), else 0.
  int starttls_refused() const { return starttls_refused_; }

 private:
  enum class State { kIdle, kGreeting, kEhlo, kHelo, kStartTls, kHandshake, kEhloAfterTls, kReady, kBusy, kFailed };

  void on_reply(ParsedReply r);
  void fail(Failure f, std::string detail);
  void emit(Event::Kind kind);
  void opened();
  void command(std::string_view line);

  std::string helo_;
  ClientTls tls_;
  State state_ = State::kIdle;
  ReplyParser parser_;
  std::string in_;   // received, not yet parsed
  std::string out_;  // to write
  ServerExtensions ext_;
  bool helo_only_ = false;
  bool tls_active_ = false;
  int starttls_refused_ = 0;
  // kBusy: lines not yet sent (one at a time without PIPELINING), replies
  // still due, replies collected.
  std::vector<std::string> queued_;
  size_t next_line_ = 0;
  size_t due_ = 0;
  std::vector<ParsedReply> collected_;
  Event event_;
};

}  // namespace doorman::smtp
