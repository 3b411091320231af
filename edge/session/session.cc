#include "edge/session/session.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <ctime>

#include "smtp/address.h"
#include "smtp/command.h"
#include "smtp/line.h"

namespace doorman::edge {

using smtp::Reply;
using smtp::Verb;

namespace {
const Reply kLineTooLong{500, "5.5.2", "Error: line too long"};
const Reply kBareLf{550, "5.5.2", "Error: bare <LF> received"};
const Reply kBareCr{550, "5.5.2", "Error: bare <CR> received"};
const Reply kNul{550, "5.5.2", "Error: NUL character received"};
const Reply kTooBig{552, "5.3.4", "Message size exceeds fixed limit"};
const Reply kLost{451, "4.4.2", "Error: connection to the mail server lost, try again later"};
// For recipients of a batch that reached the hard error limit before they
// were relayed: the same text whatever their verdict.
const Reply kTooManyErrorsRcpt{451, "4.7.0", "Error: too many errors"};

Reply lookup_failure(const std::string& mailbox) {
  return Reply{451, "4.4.3", "<" + mailbox + ">: Temporary lookup failure, try again later"};
}

// A verdict whose code does not match its decision is our own bug or a
// version skew; it must never turn into an accept or a permanent reject.
bool consistent(const Verdict& v) {
  int c = v.reply.code;
  switch (v.decision) {
    case Verdict::Decision::kAccept: return c >= 200 && c < 300;
    case Verdict::Decision::kReject: return c >= 500 && c < 600;
    case Verdict::Decision::kDefer: return c >= 400 && c < 500;
  }
  return false;
}

// The back-end's refusal as our reply: its code and class, its enhanced code
// when that is well-formed and of the same class, and our own text, so that
// internal host names never reach the client.
Reply from_backend(const Reply& b, const std::string& temp_text, const std::string& perm_text) {
  if (b.code < 400 || b.code > 599) return Reply{451, "4.4.2", "Error: unexpected reply from the mail server"};
  char cls = b.code >= 500 ? '5' : '4';
  std::string enhanced = (!b.enhanced.empty() && b.enhanced[0] == cls) ? b.enhanced : std::string(1, cls) + ".0.0";
  return Reply{b.code, enhanced, b.code >= 500 ? perm_text : temp_text};
}

std::string_view verb_name(Verb v) {
  switch (v) {
    case Verb::kEhlo: return "ehlo";
    case Verb::kHelo: return "helo";
    case Verb::kMail: return "mail";
    case Verb::kRcpt: return "rcpt";
    case Verb::kData: return "data";
    case Verb::kRset: return "rset";
    case Verb::kNoop: return "noop";
    case Verb::kQuit: return "quit";
    case Verb::kVrfy: return "vrfy";
    case Verb::kHelp: return "help";
    case Verb::kStartTls: return "starttls";
    default: return "other";
  }
}

std::string rfc5322_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}
}  // namespace

Session::Session(const SessionConfig& config, SessionInfo info) : config_(config), info_(std::move(info)) {}

void Session::observe_recipient(RcptVerdict verdict, RcptSource source) {
  if (verdict == RcptVerdict::kRejected) ++tx_rejected_;
  if (verdict == RcptVerdict::kDeferred) ++tx_deferred_;
  if (config_.observer) config_.observer->recipient(verdict, source);
}

void Session::observe_relay(RelayOutcome outcome) {
  if (config_.observer) config_.observer->relay(outcome);
}

RcptDecision Session::decision(RcptDecision d, RcptVerdict verdict, const Reply& reply, RcptReason reason,
                               RcptSource source) const {
  d.sender = mail_from_.value_or("");
  d.verdict = verdict;
  d.reply = reply;
  d.reason = reason;
  d.source = source;
  return d;
}

void Session::decide(RcptDecision d, RcptVerdict verdict, const Reply& reply, RcptReason reason, RcptSource source) {
  decisions_.push_back(decision(std::move(d), verdict, reply, reason, source));
}

void Session::decide(const std::string& mailbox, RcptVerdict verdict, const Reply& reply, RcptReason reason,
                     RcptSource source) {
  RcptDecision d;
  d.mailbox = mailbox;
  decide(std::move(d), verdict, reply, reason, source);
}

Actions Session::start() {
  Actions a;
  reply_raw("220 " + config_.hostname + " ESMTP Doorman\r\n");
  finish(a);
  return a;
}

Actions Session::feed(std::string_view bytes) {
  Actions a;
  if (closed_) return a;
  in_.append(bytes);
  process(a);
  return a;
}

void Session::reply(const Reply& r) { slots_.push_back(Slot{true, r.wire()}); }

void Session::reply_raw(std::string wire) { slots_.push_back(Slot{true, std::move(wire)}); }

void Session::reply_error(const Reply& r) {
  reply(r);
  if (count_error()) close_with(too_many_errors(), SessionEnd::kTooManyErrors);
}

void Session::set_slot(size_t slot, const Reply& r) {
  Slot& s = slots_[slot - slots_sent_];
  s.ready = true;
  s.wire = r.wire();
}

size_t Session::group_limit() const {
  const int left = config_.hard_error_limit - errors_;
  return std::min(kMaxCheckGroup, static_cast<size_t>(std::max(1, left)));
}

bool Session::count_error() {
  ++errors_;
  ++stats_.errors;
  return errors_ >= config_.hard_error_limit;
}

void Session::count_junk() {
  // Postfix's smtpd_junk_command_limit: past it, every NOOP, RSET, VRFY or
  // HELP counts as an error, so they cannot keep a session (and a back-end
  // connection it holds) alive for ever.
  if (++junk_ > config_.junk_command_limit) {
    if (count_error()) close_with(too_many_errors(), SessionEnd::kTooManyErrors);
  }
}

void Session::drop_slots_after(size_t slot) {
  const size_t keep = slot + 1 - slots_sent_;
  if (keep < slots_.size()) slots_.erase(slots_.begin() + static_cast<std::ptrdiff_t>(keep), slots_.end());
}

void Session::close_with(const Reply& r, SessionEnd why) {
  if (close_after_flush_) return;
  reply(r);
  close_after_flush_ = true;
  end_ = why;
}

Reply Session::too_many_errors() const { return Reply{421, "4.7.0", config_.hostname + " Error: too many errors"}; }

void Session::end_transaction(Actions& a, bool release, const char* result, int code) {
  if (mail_from_) {
    TransactionSummary t;
    t.sender = *mail_from_;
    t.accepted = rcpt_accepted_;
    t.rejected = tx_rejected_;
    t.deferred = tx_deferred_;
    t.size = tx_size_;
    t.result = result;
    t.code = code;
    a.transaction = std::move(t);
  }
  tx_rejected_ = tx_deferred_ = tx_size_ = 0;
  if (relay_open_ && !release && mode_ == Mode::kData) observe_relay(RelayOutcome::kAborted);
  if (relay_open_) {
    RelayOp op;
    op.kind = release ? RelayOp::Kind::kRelease : RelayOp::Kind::kAbort;
    a.relay.push_back(std::move(op));
  }
  relay_open_ = false;
  mail_from_.reset();
  mail_size_.reset();
  mail_8bit_ = false;
  rcpt_accepted_ = 0;
  single_rcpt_.clear();
  route_.clear();
}

void Session::finish(Actions& a) {
  size_t n = 0;
  while (n < slots_.size() && slots_[n].ready) {
    const std::string& w = slots_[n].wire;
    if (config_.observer && w.size() >= 3)
      config_.observer->reply((w[0] - '0') * 100 + (w[1] - '0') * 10 + (w[2] - '0'));
    a.output += w;
    ++n;
  }
  slots_.erase(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(n));
  slots_sent_ += n;
  if (tx_started_) {
    a.transaction_started = true;
    tx_started_ = false;
  }
  if (!decisions_.empty()) {
    for (auto& d : decisions_) a.decisions.push_back(std::move(d));
    decisions_.clear();
  }
  if (errors_ > config_.soft_error_limit && !a.output.empty()) a.delay = config_.error_delay;
  if (!a.output.empty() && verdict_delay_ > a.delay) a.delay = verdict_delay_;
  if (!a.output.empty()) verdict_delay_ = std::chrono::milliseconds(0);
  if (close_after_flush_ && slots_.empty()) {
    if (in_transaction() || relay_open_) end_transaction(a, false, "closed");
    a.close = true;
    a.end = end_;
    closed_ = true;
    a.check.reset();
  }
}

void Session::process(Actions& a) {
  size_t pos = 0;
  while (!closed_ && !close_after_flush_ && pending_ == Pending::kNone) {
    std::string_view rest = std::string_view(in_).substr(pos);
    if (mode_ == Mode::kData) {
      pos += data_->feed(rest, data_out_);
      if (data_->problem() != smtp::DataReader::Problem::kNone && !data_aborted_) {
        // The message is bad: the back-end must never see its end.
        data_aborted_ = true;
        data_out_.clear();
        if (relay_open_) {
          a.relay.push_back(RelayOp{RelayOp::Kind::kAbort});
          relay_open_ = false;
          observe_relay(RelayOutcome::kAborted);
        }
      }
      // The back-end is gone (or the message is bad): what the client still
      // sends is read and dropped, so a session's memory stays bounded.
      if (data_aborted_) data_out_.clear();
      if (data_->done()) {
        finish_data(a);
        continue;
      }
      if (!data_out_.empty() && !data_aborted_) {
        RelayOp op{RelayOp::Kind::kChunk};
        if (!header_sent_) {
          op.bytes = received_header();
          header_sent_ = true;
        }
        op.bytes += data_out_;
        stats_.bytes_relayed += op.bytes.size();
        data_out_.clear();
        a.relay.push_back(std::move(op));
        pending_ = Pending::kChunk;
      }
      break;
    }
    if (skipping_long_line_) {
      size_t lf = rest.find('\n');
      if (lf == std::string_view::npos) {
        pos = in_.size();
        break;
      }
      pos += lf + 1;
      skipping_long_line_ = false;
      reply_error(kLineTooLong);
      continue;
    }
    if (shutting_down_ && !in_transaction() && group_.empty()) {
      close_with(Reply{421, "4.3.2", config_.hostname + " Service shutting down"}, SessionEnd::kShutdown);
      break;
    }
    smtp::LineResult r = smtp::next_line(rest, config_.max_line);
    if (r.status == smtp::LineStatus::kNeedMore) break;
    if (r.status != smtp::LineStatus::kLine) {
      pos += r.consumed;
      switch (r.status) {
        case smtp::LineStatus::kTooLong:
          if (!r.complete) {
            skipping_long_line_ = true;
            continue;
          }
          reply_error(kLineTooLong);
          break;
        case smtp::LineStatus::kBareLf: reply_error(kBareLf); break;
        case smtp::LineStatus::kBareCr: reply_error(kBareCr); break;
        default: reply_error(kNul); break;
      }
      continue;
    }
    smtp::Command c = smtp::parse_command(r.line);
    // RFC 2920: a group of RCPTs is verified at once; any other command
    // waits until the group's verdicts are in, since its reply may depend
    // on them (DATA) or change the transaction (RSET, MAIL).
    // A group never holds more recipients than the session has errors left:
    // the hard limit can then only fall on a group's last recipient, so no
    // recipient after it reaches the directory or the back-end, and no
    // delay or timing of theirs can show (issue #12).
    if (!group_.empty() && (c.verb != Verb::kRcpt || group_.size() >= group_limit())) break;
    bool more_input = rest.size() > r.consumed;
    pos += r.consumed;
    if (config_.observer) config_.observer->command(verb_name(c.verb));
    if (c.verb == Verb::kData) {
      if (!cmd_data(c.arg, more_input, a)) break;
      continue;
    }
    if (c.verb == Verb::kStartTls && cmd_starttls(c.arg, a)) {
      // CVE-2011-0411 class: whatever the client sent after STARTTLS in
      // plaintext must not be read as commands inside TLS.
      pos = in_.size();
      break;
    }
    if (c.verb == Verb::kRset || c.verb == Verb::kEhlo || c.verb == Verb::kHelo) {
      if (in_transaction() && (c.verb == Verb::kRset ? c.arg.empty() : !c.arg.empty())) end_transaction(a, true, "reset");
    }
    handle_command(c);
  }
  in_.erase(0, pos);
  if (!group_.empty() && pending_ == Pending::kNone && close_after_flush_) {
    // The session is closing (hard error limit) before the group was asked
    // about: its replies must not wait for a check that never starts, and
    // must not depend on verdicts.
    for (size_t i = 0; i < group_slots_.size(); ++i) {
      set_slot(group_slots_[i], kTooManyErrorsRcpt);
      decide(group_[i].mailbox, RcptVerdict::kDeferred, kTooManyErrorsRcpt, RcptReason::kTooManyErrors,
             RcptSource::kPolicy);
    }
    group_.clear();
    group_slots_.clear();
  }
  if (!group_.empty() && pending_ == Pending::kNone && !closed_ && !close_after_flush_) {
    CheckRequest req;
    req.helo = helo_;
    req.mail_from = mail_from_.value_or("");
    req.recipients = group_;
    a.check = std::move(req);
    pending_ = Pending::kCheck;
    ++stats_.directory_calls;
  }
  finish(a);
}

void Session::handle_command(const smtp::Command& c) {
  switch (c.verb) {
    case Verb::kEhlo: cmd_ehlo(c.arg, true); break;
    case Verb::kHelo: cmd_ehlo(c.arg, false); break;
    case Verb::kMail: cmd_mail(c.arg); break;
    case Verb::kRcpt: cmd_rcpt(c.arg); break;
    case Verb::kRset:
      if (!c.arg.empty()) {
        reply_error(Reply{501, "5.5.4", "Syntax: RSET"});
        break;
      }
      reply(Reply{250, "2.0.0", "Ok"});
      count_junk();
      break;
    case Verb::kNoop:
      reply(Reply{250, "2.0.0", "Ok"});
      count_junk();
      break;
    case Verb::kQuit: close_with(Reply{221, "2.0.0", "Bye"}, SessionEnd::kClientQuit); break;
    case Verb::kVrfy:
      if (c.arg.empty()) {
        reply_error(Reply{501, "5.5.4", "Syntax: VRFY address"});
        break;
      }
      // Same answer for every address: VRFY must not enumerate mailboxes.
      reply(Reply{252, "2.0.0", "Cannot VRFY user; send mail to find out"});
      count_junk();
      break;
    case Verb::kHelp:
      reply(Reply{214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"});
      count_junk();
      break;
    case Verb::kStartTls:  // refused here; accepted in cmd_starttls()
      if (!config_.starttls) {
        reply_error(Reply{502, "5.5.1", "Error: command not implemented"});
      } else if (tls_active_) {
        reply_error(Reply{554, "5.5.1", "Error: TLS already active"});
      } else if (!c.arg.empty()) {
        reply_error(Reply{501, "5.5.4", "Syntax: STARTTLS"});
      } else if (!extended_) {
        reply_error(Reply{503, "5.5.1", "Error: send EHLO first"});
      } else {
        reply_error(Reply{503, "5.5.1", "Error: MAIL transaction in progress"});
      }
      break;
    case Verb::kExpn:
    case Verb::kTurn:
    case Verb::kBdat:
    case Verb::kAuth:
      reply_error(Reply{502, "5.5.1", "Error: command not implemented"});
      break;
    case Verb::kData:  // handled in process()
    case Verb::kUnknown:
      reply_error(Reply{500, "5.5.2", "Error: command not recognized"});
      break;
  }
}

void Session::cmd_ehlo(std::string_view arg, bool extended) {
  if (arg.empty()) {
    reply_error(Reply{501, "5.5.4", extended ? "Syntax: EHLO hostname" : "Syntax: HELO hostname"});
    return;
  }
  for (char ch : arg) {
    if (static_cast<unsigned char>(ch) >= 0x80 || static_cast<unsigned char>(ch) < 0x20) {
      reply_error(Reply{501, "5.5.4", "Error: invalid characters in hostname"});
      return;
    }
  }
  helo_.assign(arg.substr(0, 255));
  extended_ = extended;
  if (!extended) {
    reply(Reply{250, "", config_.hostname});
    return;
  }
  std::vector<std::string> lines{config_.hostname, "PIPELINING", "SIZE " + std::to_string(config_.max_message_size),
                                 "8BITMIME", "ENHANCEDSTATUSCODES"};
  if (config_.starttls && !tls_active_) lines.push_back("STARTTLS");
  reply_raw(smtp::multiline(250, lines));
}

bool Session::cmd_starttls(std::string_view arg, Actions& a) {
  if (!config_.starttls || tls_active_ || !arg.empty() || !extended_ || in_transaction()) return false;
  reply(Reply{220, "2.0.0", "Ready to start TLS"});
  pending_ = Pending::kTls;
  a.start_tls = true;
  return true;
}

Actions Session::on_tls(std::string description) {
  Actions a;
  if (pending_ != Pending::kTls) return a;
  pending_ = Pending::kNone;
  tls_active_ = true;
  tls_description_ = std::move(description);
  // RFC 3207 §4.2: forget everything learnt from the client before TLS.
  helo_.clear();
  extended_ = false;
  in_.clear();
  process(a);
  return a;
}

Actions Session::on_tls_failed() {
  Actions a;
  pending_ = Pending::kNone;
  in_.clear();
  closed_ = true;
  a.close = true;
  return a;
}

void Session::cmd_mail(std::string_view arg) {
  if (helo_.empty()) {
    reply_error(Reply{503, "5.5.1", "Error: send HELO/EHLO first"});
    return;
  }
  if (in_transaction()) {
    reply_error(Reply{503, "5.5.1", "Error: nested MAIL command"});
    return;
  }
  smtp::PathArg p = smtp::parse_path_arg(arg, "FROM:");
  if (!p.ok()) {
    if (p.error == smtp::ArgError::kAddress && p.path.error == smtp::AddressError::kNonAscii) {
      reply_error(Reply{550, "5.6.7", "Error: SMTPUTF8 is required for this address but was not declared"});
    } else if (p.error == smtp::ArgError::kAddress) {
      reply_error(Reply{501, "5.1.7", "Error: bad sender address syntax"});
    } else {
      reply_error(Reply{501, "5.5.4", "Syntax: MAIL FROM:<address>"});
    }
    return;
  }
  std::optional<uint64_t> size;
  bool body_8bit = false;
  for (const auto& param : p.params) {
    if (smtp::iequals(param.keyword, "SIZE")) {
      uint64_t n = 0;
      auto [ptr, ec] = std::from_chars(param.value.data(), param.value.data() + param.value.size(), n);
      if (param.value.empty() || ec != std::errc() || ptr != param.value.data() + param.value.size()) {
        reply_error(Reply{501, "5.5.4", "Error: bad SIZE parameter"});
        return;
      }
      if (n > config_.max_message_size) {
        reply_error(kTooBig);
        return;
      }
      size = n;
    } else if (smtp::iequals(param.keyword, "BODY")) {
      if (smtp::iequals(param.value, "8BITMIME")) {
        body_8bit = true;
      } else if (!smtp::iequals(param.value, "7BIT")) {
        reply_error(Reply{501, "5.5.4", "Error: bad BODY parameter"});
        return;
      }
    } else {
      reply_error(Reply{555, "5.5.4", "Error: unsupported MAIL parameter"});
      return;
    }
  }
  mail_from_ = p.path.null_path ? std::string() : p.path.mailbox.str();
  tx_started_ = true;
  mail_size_ = size;
  mail_8bit_ = body_8bit;
  rcpt_accepted_ = 0;
  reply(Reply{250, "2.1.0", "Ok"});
}

void Session::cmd_rcpt(std::string_view arg) {
  if (!in_transaction()) {
    reply_error(Reply{503, "5.5.1", "Error: need MAIL command"});
    return;
  }
  std::string mailbox;
  // RFC 5321 §4.5.1: "RCPT TO:<Postmaster>" without a domain must work.
  std::string_view to = arg;
  if (to.size() >= 3 && smtp::iequals(to.substr(0, 3), "TO:")) {
    to.remove_prefix(3);
    if (!to.empty() && to.front() == ' ') to.remove_prefix(1);
  }
  if (smtp::iequals(to, "<postmaster>")) {
    // Without a configured domain the directory resolves the bare name (its
    // --postmaster-domain, else the first guarded domain), and the back-end
    // gets "<postmaster>" as RFC 5321 requires every server to accept.
    mailbox = config_.postmaster_domain.empty() ? std::string("postmaster") : "postmaster@" + config_.postmaster_domain;
  } else {
    smtp::PathArg p = smtp::parse_path_arg(arg, "TO:");
    if (!p.ok()) {
      if (p.error == smtp::ArgError::kAddress && p.path.error == smtp::AddressError::kNonAscii) {
        reply_error(Reply{553, "5.6.7", "Error: SMTPUTF8 is required for this address but was not declared"});
      } else if (p.error == smtp::ArgError::kAddress) {
        reply_error(Reply{501, "5.1.3", "Error: bad recipient address syntax"});
      } else {
        reply_error(Reply{501, "5.5.4", "Syntax: RCPT TO:<address>"});
      }
      return;
    }
    if (p.path.null_path) {
      reply_error(Reply{501, "5.1.3", "Error: bad recipient address syntax"});
      return;
    }
    if (!p.params.empty()) {
      reply_error(Reply{555, "5.5.4", "Error: unsupported RCPT parameter"});
      return;
    }
    mailbox = p.path.mailbox.str();
  }
  if (rcpt_accepted_ + group_.size() >= config_.max_recipients) {
    const Reply too_many{452, "4.5.3", "Error: too many recipients"};
    reply(too_many);
    decide(mailbox, RcptVerdict::kDeferred, too_many, RcptReason::kTooManyRecipients, RcptSource::kPolicy);
    return;
  }
  group_slots_.push_back(slots_sent_ + slots_.size());
  slots_.push_back(Slot{false, {}});
  group_.push_back(RecipientRequest{std::move(mailbox)});
}

bool Session::cmd_data(std::string_view arg, bool more_input, Actions& a) {
  if (!in_transaction()) {
    reply_error(Reply{503, "5.5.1", "Error: need MAIL command"});
    return true;
  }
  if (!arg.empty()) {
    reply_error(Reply{501, "5.5.4", "Syntax: DATA"});
    return true;
  }
  if (rcpt_accepted_ == 0) {
    reply_error(Reply{554, "5.5.1", "Error: no valid recipients"});
    return true;
  }
  if (more_input) {
    // RFC 2920 §3.1: DATA ends a pipelined group; content must wait for 354.
    end_transaction(a, false, "aborted", 554);
    close_with(Reply{554, "5.5.0", "Error: SMTP protocol synchronization"}, SessionEnd::kSyncError);
    return false;
  }
  if (!relay_open_) {  // the back-end connection was lost after RCPT
    reply(kLost);
    end_transaction(a, false, "lost", kLost.code);
    return true;
  }
  a.relay.push_back(RelayOp{RelayOp::Kind::kData});
  pending_ = Pending::kData;
  return false;
}

void Session::finish_data(Actions& a) {
  mode_ = Mode::kCommand;
  ++stats_.transactions;
  tx_size_ = data_->size();
  switch (data_->problem()) {
    case smtp::DataReader::Problem::kBareLf: reply_error(kBareLf); break;
    case smtp::DataReader::Problem::kBareCr: reply_error(kBareCr); break;
    case smtp::DataReader::Problem::kNul: reply_error(kNul); break;
    case smtp::DataReader::Problem::kTooBig: reply(kTooBig); break;
    case smtp::DataReader::Problem::kNone:
      if (data_aborted_ || !relay_open_) {  // the back-end went away mid-DATA
        reply(kLost);
        observe_relay(RelayOutcome::kLost);
        break;
      }
      RelayOp op{RelayOp::Kind::kEnd};
      if (!header_sent_) op.bytes = received_header();
      op.bytes += data_out_;
      stats_.bytes_relayed += op.bytes.size();
      data_out_.clear();
      a.relay.push_back(std::move(op));
      pending_ = Pending::kEnd;
      data_.reset();
      return;
  }
  const smtp::DataReader::Problem problem = data_->problem();
  data_.reset();
  data_out_.clear();
  if (problem == smtp::DataReader::Problem::kNone) {
    end_transaction(a, false, "lost", kLost.code);
  } else {
    end_transaction(a, false, "rejected", problem == smtp::DataReader::Problem::kTooBig ? kTooBig.code : 550);
  }
}

std::string Session::received_header() const {
  std::string ip = info_.client_ip.find(':') != std::string::npos ? "IPv6:" + info_.client_ip : info_.client_ip;
  // RFC 3848: ESMTPS when TLS is active; the cipher as Postfix writes it.
  std::string h = "Received: from " + helo_ + " ([" + ip + "])\r\n\t";
  if (tls_active_ && !tls_description_.empty()) h += "(using " + tls_description_ + ")\r\n\t";
  h += "by " + config_.hostname + " (Doorman) with " +
       (extended_ ? (tls_active_ ? "ESMTPS" : "ESMTP") : (tls_active_ ? "SMTPS" : "SMTP")) + " id " + info_.id + "." +
       std::to_string(tx_seq_);
  if (rcpt_accepted_ == 1 && !single_rcpt_.empty()) h += "\r\n\tfor <" + single_rcpt_ + ">";
  h += "; " + (config_.now ? config_.now() : rfc5322_now()) + "\r\n";
  return h;
}

Actions Session::on_verdicts(std::vector<Verdict> verdicts) {
  if (verdicts.size() != group_.size()) return on_check_failed();
  Actions a;
  pending_ = Pending::kNone;
  RelayOp op{RelayOp::Kind::kRcpts};
  // Absolute slot of the recipient whose rejection reached the hard error
  // limit: no reply after it may depend on a verdict.
  std::optional<size_t> limit_slot;
  for (size_t i = 0; i < verdicts.size() && !limit_slot; ++i) {
    Verdict& v = verdicts[i];
    const std::string& mailbox = group_[i].mailbox;
    if (v.delay > verdict_delay_) verdict_delay_ = std::min(v.delay, std::chrono::milliseconds(30000));
    size_t slot = group_slots_[i];
    if (!consistent(v)) {
      const Reply r = lookup_failure(mailbox);
      set_slot(slot, r);
      ++stats_.rcpt_deferred;
      observe_recipient(RcptVerdict::kDeferred, RcptSource::kError);
      decide(mailbox, RcptVerdict::kDeferred, r, RcptReason::kLookupError, RcptSource::kError);
      continue;
    }
    // The directory's part of the decision log line.
    RcptDecision base;
    base.mailbox = mailbox;
    base.would_reject = v.would_reject;
    base.would_code = v.would_code;
    base.cache_age = v.cache_age;
    base.source_name = v.source_name;
    switch (v.decision) {
      case Verdict::Decision::kAccept:
        if (v.route.empty()) {
          const Reply r{451, "4.4.1", "<" + mailbox + ">: Temporary failure, try again later"};
          set_slot(slot, r);
          ++stats_.rcpt_deferred;
          observe_recipient(RcptVerdict::kDeferred, RcptSource::kError);
          decide(std::move(base), RcptVerdict::kDeferred, r, RcptReason::kLookupError, RcptSource::kError);
        } else if (rcpt_accepted_ > 0 && !relay_open_) {
          // The back-end transaction holding this transaction's accepted
          // recipients was lost: opening a new one would drop them silently.
          const Reply r{451, "4.4.2", "<" + mailbox + ">: Temporary failure, try again later"};
          set_slot(slot, r);
          ++stats_.rcpt_deferred;
          observe_recipient(RcptVerdict::kDeferred, RcptSource::kError);
          decide(std::move(base), RcptVerdict::kDeferred, r, RcptReason::kBackendLost, RcptSource::kError);
        } else if (!route_.empty() && v.route != route_) {
          // One back-end per transaction: the client sends it again later.
          const Reply r{452, "4.5.3", "<" + mailbox + ">: Try this recipient in a new transaction"};
          set_slot(slot, r);
          ++stats_.rcpt_deferred;
          observe_recipient(RcptVerdict::kDeferred, RcptSource::kPolicy);
          decide(std::move(base), RcptVerdict::kDeferred, r, RcptReason::kOtherRoute, RcptSource::kPolicy);
        } else {
          route_ = v.route;
          op.rcpts.push_back(mailbox);
          base.reason = v.why;
          base.source = v.source;
          relay_group_.push_back(RelayRcpt{slot, mailbox, v.source, std::move(base)});
        }
        break;
      case Verdict::Decision::kReject:
        set_slot(slot, v.reply);
        ++stats_.rcpt_rejected;
        observe_recipient(RcptVerdict::kRejected, v.source);
        // Unknown recipients count (harvest defence), in command order: one
        // after a recipient that goes to the back-end first is counted when
        // the back-end has answered for that one, so where the limit falls
        // never depends on a later recipient's verdict.
        if (relay_group_.empty()) {
          decide(std::move(base), RcptVerdict::kRejected, v.reply, v.why, v.source);
          if (count_error()) limit_slot = slot;
        } else {
          uncounted_errors_.push_back(slot);
          // Logged when counted: past the limit it gets no reply at all.
          uncounted_decisions_.push_back(
              decision(std::move(base), RcptVerdict::kRejected, v.reply, v.why, v.source));
        }
        break;
      case Verdict::Decision::kDefer:
        set_slot(slot, v.reply);
        ++stats_.rcpt_deferred;
        observe_recipient(RcptVerdict::kDeferred, v.source);
        decide(std::move(base), RcptVerdict::kDeferred, v.reply, v.why, v.source);
        break;
    }
  }
  group_.clear();
  group_slots_.clear();
  if (limit_slot) {
    // Accepted recipients before the limit never reach the back-end; every
    // command after it goes unanswered (as Postfix at its hard limit).
    for (RelayRcpt& rr : relay_group_)
      decide(std::move(rr.decision), RcptVerdict::kDeferred, kTooManyErrorsRcpt, RcptReason::kTooManyErrors,
             RcptSource::kPolicy);
    relay_group_.clear();
    drop_slots_after(*limit_slot);
    for (Slot& s : slots_) {
      if (!s.ready) {
        s.ready = true;
        s.wire = kTooManyErrorsRcpt.wire();
      }
    }
    close_with(too_many_errors(), SessionEnd::kTooManyErrors);
  }
  if (!relay_group_.empty()) {
    op.open = !relay_open_;
    if (op.open) {
      op.route = route_;
      op.mail_from = mail_from_.value_or("");
      op.size = mail_size_;
      op.body_8bit = mail_8bit_;
    }
    a.relay.push_back(std::move(op));
    pending_ = Pending::kRcpts;
    finish(a);
    return a;
  }
  process(a);
  return a;
}

Actions Session::on_check_failed() {
  Actions a;
  pending_ = Pending::kNone;
  for (size_t i = 0; i < group_.size(); ++i) {
    const Reply r = lookup_failure(group_[i].mailbox);
    set_slot(group_slots_[i], r);
    ++stats_.rcpt_deferred;
    observe_recipient(RcptVerdict::kDeferred, RcptSource::kError);
    decide(group_[i].mailbox, RcptVerdict::kDeferred, r, RcptReason::kLookupError, RcptSource::kError);
  }
  group_.clear();
  group_slots_.clear();
  process(a);
  return a;
}

Actions Session::on_relay(RelayResult r) {
  Actions a;
  Pending was = pending_;
  pending_ = Pending::kNone;
  const bool ok = r.status == RelayResult::Status::kOk;
  switch (was) {
    case Pending::kRcpts: {
      if (ok && !r.mail_refused) relay_open_ = true;
      if (!ok) relay_open_ = false;
      std::optional<size_t> limit_slot;
      // The directory's rejections of this group that follow a relayed
      // recipient count now, in command order with the back-end's answers.
      size_t next_uncounted = 0;
      auto count_errors_before = [&](size_t slot) {
        while (!limit_slot && next_uncounted < uncounted_errors_.size() && uncounted_errors_[next_uncounted] < slot) {
          decisions_.push_back(std::move(uncounted_decisions_[next_uncounted]));
          if (count_error()) limit_slot = uncounted_errors_[next_uncounted];
          ++next_uncounted;
        }
      };
      for (size_t i = 0; i < relay_group_.size() && !limit_slot; ++i) {
        RelayRcpt& rr = relay_group_[i];
        count_errors_before(rr.slot);
        if (limit_slot) break;
        Reply rep;
        // Why, for the decision log, when the back-end's answer is not 250.
        RcptReason why = RcptReason::kBackendLost;
        if (r.status == RelayResult::Status::kUnreachable) {
          rep = Reply{451, "4.4.1", "<" + rr.mailbox + ">: Temporary failure, try again later"};
          why = RcptReason::kBackendUnreachable;
        } else if (r.status == RelayResult::Status::kBusy) {
          rep = Reply{451, "4.4.5", "<" + rr.mailbox + ">: Too many connections to the mail server, try again later"};
          why = RcptReason::kBackendBusy;
        } else if (!ok || i >= r.replies.size()) {
          rep = Reply{451, "4.4.2", "<" + rr.mailbox + ">: Temporary failure, try again later"};
        } else if (r.replies[i].code >= 200 && r.replies[i].code < 300 && !r.mail_refused) {
          rep = Reply{250, "2.1.5", "OK"};
        } else {
          rep = from_backend(r.replies[i], "<" + rr.mailbox + ">: Recipient temporarily refused, try again later",
                               "<" + rr.mailbox + ">: Recipient address rejected by the mail server");
          why = rep.code >= 500 ? RcptReason::kBackendRefused : RcptReason::kBackendDeferred;
        }
        if (rep.code == 250) {
          ++rcpt_accepted_;
          ++stats_.rcpt_accepted;
          single_rcpt_ = rr.mailbox;
          observe_recipient(RcptVerdict::kAccepted, rr.source);
          // A shadow-mode pass that the back-end took: "shadow".
          const RcptReason reason = rr.decision.would_reject ? RcptReason::kShadow : rr.decision.reason;
          decide(std::move(rr.decision), RcptVerdict::kAccepted, rep, reason, rr.source);
        } else if (rep.code >= 500) {
          ++stats_.rcpt_rejected;
          observe_recipient(RcptVerdict::kRejected, RcptSource::kBackend);
          decide(std::move(rr.decision), RcptVerdict::kRejected, rep, why, RcptSource::kBackend);
          // The back-end's "unknown" counts like the directory's: in
          // accept-all mode it is the only harvest signal.
          if (count_error()) limit_slot = rr.slot;
        } else {
          ++stats_.rcpt_deferred;
          const RcptSource source = ok ? RcptSource::kBackend : RcptSource::kError;
          observe_recipient(RcptVerdict::kDeferred, source);
          decide(std::move(rr.decision), RcptVerdict::kDeferred, rep, why, source);
        }
        set_slot(rr.slot, rep);
      }
      count_errors_before(SIZE_MAX);
      uncounted_errors_.clear();
      uncounted_decisions_.clear();
      relay_group_.clear();
      if (rcpt_accepted_ == 0 && !relay_open_) route_.clear();
      if (limit_slot) {
        drop_slots_after(*limit_slot);
        close_with(too_many_errors(), SessionEnd::kTooManyErrors);
      }
      break;
    }
    case Pending::kData:
      if (ok && !r.replies.empty() && r.replies[0].code == 354) {
        reply_raw("354 End data with <CR><LF>.<CR><LF>\r\n");
        mode_ = Mode::kData;
        ++tx_seq_;
        data_.emplace(config_.max_message_size);
        data_aborted_ = false;
        header_sent_ = false;
        break;
      }
      {
        Reply out = kLost;
        if (!ok) {
          relay_open_ = false;
        } else {
          out = from_backend(r.replies.empty() ? Reply{} : r.replies[0],
                             "Error: temporarily refused by the mail server, try again later",
                             "Error: refused by the mail server");
        }
        reply(out);
        end_transaction(a, ok, !ok ? "lost" : out.code >= 500 ? "rejected" : "deferred", out.code);
      }
      break;
    case Pending::kChunk:
      if (!ok) {
        relay_open_ = false;
        data_aborted_ = true;  // read the rest of the message, then 451 4.4.2
      }
      break;
    case Pending::kEnd: {
      Reply out;
      if (!ok || r.replies.empty()) {
        relay_open_ = false;
        out = kLost;
      } else if (r.replies[0].code == 250) {
        out = Reply{250, "2.0.0", "Ok: delivered to the mail server as " + info_.id + "." + std::to_string(tx_seq_)};
        ++stats_.delivered;
        junk_ = 0;  // as Postfix: the junk count starts over after a delivered message
      } else {
        out = from_backend(r.replies[0], "Error: message temporarily refused by the mail server, try again later",
                             "Error: message refused by the mail server");
      }
      reply(out);
      const RelayOutcome outcome = out.code == 250                ? RelayOutcome::kDelivered
                                   : !ok || r.replies.empty()     ? RelayOutcome::kLost
                                   : out.code >= 500              ? RelayOutcome::kRejected
                                                                  : RelayOutcome::kDeferred;
      observe_relay(outcome);
      end_transaction(a, ok, label(outcome).data(), out.code);  // labels are literals
      break;
    }
    case Pending::kTls:
      pending_ = was;  // no relay is open across STARTTLS
      return a;
    case Pending::kNone:
    case Pending::kCheck:
      break;  // not ours: ignore
  }
  process(a);
  return a;
}

Actions Session::on_timeout() {
  Actions a;
  if (closed_) return a;
  end_transaction(a, false, "aborted");
  a.output = Reply{421, "4.4.2", config_.hostname + " Error: timeout exceeded"}.wire();
  a.close = true;
  a.end = SessionEnd::kTimeout;
  closed_ = true;
  return a;
}

Actions Session::on_shutdown() {
  Actions a;
  shutting_down_ = true;
  if (closed_) return a;
  if (pending_ == Pending::kNone && mode_ == Mode::kCommand) process(a);
  return a;
}

namespace {
template <typename C>
void release_if_empty(C& c) {
  if (c.empty()) C().swap(c);
}
}  // namespace

void Session::release_idle_memory() {
  // Only between commands: a message streaming through would free and
  // allocate its buffers at every read.
  if (mode_ != Mode::kCommand || pending_ != Pending::kNone) return;
  release_if_empty(in_);
  release_if_empty(slots_);
  release_if_empty(group_slots_);
  release_if_empty(group_);
  release_if_empty(relay_group_);
  release_if_empty(uncounted_errors_);
  release_if_empty(uncounted_decisions_);
  release_if_empty(decisions_);
  release_if_empty(data_out_);
}

}  // namespace doorman::edge
