#include "edge/session/session.h"

#include <charconv>

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
}  // namespace

Session::Session(const SessionConfig& config) : config_(config) {}

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
  ++errors_;
  ++stats_.errors;
  if (errors_ >= config_.hard_error_limit) close_with(Reply{421, "4.7.0", config_.hostname + " Error: too many errors"});
}

void Session::close_with(const Reply& r) {
  if (close_after_flush_) return;
  reply(r);
  close_after_flush_ = true;
}

void Session::reset_transaction() {
  mail_from_.reset();
  rcpt_accepted_ = 0;
}

void Session::finish(Actions& a) {
  size_t n = 0;
  while (n < slots_.size() && slots_[n].ready) {
    a.output += slots_[n].wire;
    ++n;
  }
  slots_.erase(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(n));
  slots_sent_ += n;
  if (errors_ > config_.soft_error_limit && !a.output.empty()) a.delay = config_.error_delay;
  if (close_after_flush_ && slots_.empty()) {
    a.close = true;
    closed_ = true;
    a.check.reset();
  }
}

void Session::process(Actions& a) {
  size_t pos = 0;
  while (!closed_ && !close_after_flush_ && !waiting_) {
    std::string_view rest = std::string_view(in_).substr(pos);
    if (mode_ == Mode::kData) {
      pos += data_->feed(rest, data_out_);
      data_out_.clear();  // relay (#3) streams it; until then it is dropped
      if (!data_->done()) break;
      handle_data(a);
      continue;
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
      close_with(Reply{421, "4.3.2", config_.hostname + " Service shutting down"});
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
    if (!group_.empty() && c.verb != Verb::kRcpt) break;
    bool more_input = rest.size() > r.consumed;
    pos += r.consumed;
    if (c.verb == Verb::kData) {
      if (!cmd_data(c.arg, more_input)) break;
      continue;
    }
    handle_line(r.line, a);
  }
  in_.erase(0, pos);
  if (!group_.empty() && !waiting_ && !closed_ && !close_after_flush_) {
    CheckRequest req;
    req.helo = helo_;
    req.mail_from = mail_from_.value_or("");
    req.recipients = group_;
    a.check = std::move(req);
    waiting_ = true;
    ++stats_.directory_calls;
  }
  finish(a);
}

bool Session::handle_line(std::string_view line, Actions&) {
  smtp::Command c = smtp::parse_command(line);
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
      reset_transaction();
      reply(Reply{250, "2.0.0", "Ok"});
      break;
    case Verb::kNoop: reply(Reply{250, "2.0.0", "Ok"}); break;
    case Verb::kQuit: close_with(Reply{221, "2.0.0", "Bye"}); break;
    case Verb::kVrfy:
      if (c.arg.empty()) {
        reply_error(Reply{501, "5.5.4", "Syntax: VRFY address"});
        break;
      }
      // Same answer for every address: VRFY must not enumerate mailboxes.
      reply(Reply{252, "2.0.0", "Cannot VRFY user; send mail to find out"});
      break;
    case Verb::kHelp:
      reply(Reply{214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP"});
      break;
    case Verb::kExpn:
    case Verb::kTurn:
    case Verb::kStartTls:
    case Verb::kBdat:
    case Verb::kAuth:
      reply_error(Reply{502, "5.5.1", "Error: command not implemented"});
      break;
    case Verb::kData:  // handled in process()
    case Verb::kUnknown:
      reply_error(Reply{500, "5.5.2", "Error: command not recognized"});
      break;
  }
  return true;
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
  reset_transaction();
  if (!extended) {
    reply(Reply{250, "", config_.hostname});
    return;
  }
  reply_raw(smtp::multiline(250, {config_.hostname, "PIPELINING", "SIZE " + std::to_string(config_.max_message_size),
                                  "8BITMIME", "ENHANCEDSTATUSCODES"}));
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
    } else if (p.error == smtp::ArgError::kAddress && p.path.error != smtp::AddressError::kNone) {
      reply_error(Reply{501, "5.1.7", "Error: bad sender address syntax"});
    } else {
      reply_error(Reply{501, "5.5.4", "Syntax: MAIL FROM:<address>"});
    }
    return;
  }
  for (const auto& param : p.params) {
    if (smtp::iequals(param.keyword, "SIZE")) {
      uint64_t size = 0;
      auto [ptr, ec] = std::from_chars(param.value.data(), param.value.data() + param.value.size(), size);
      if (param.value.empty() || ec != std::errc() || ptr != param.value.data() + param.value.size()) {
        reply_error(Reply{501, "5.5.4", "Error: bad SIZE parameter"});
        return;
      }
      if (size > config_.max_message_size) {
        reply_error(Reply{552, "5.3.4", "Message size exceeds fixed limit"});
        return;
      }
    } else if (smtp::iequals(param.keyword, "BODY")) {
      if (!smtp::iequals(param.value, "7BIT") && !smtp::iequals(param.value, "8BITMIME")) {
        reply_error(Reply{501, "5.5.4", "Error: bad BODY parameter"});
        return;
      }
    } else {
      reply_error(Reply{555, "5.5.4", "Error: unsupported MAIL parameter"});
      return;
    }
  }
  mail_from_ = p.path.null_path ? std::string() : p.path.mailbox.str();
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
    if (config_.postmaster_domain.empty()) {
      reply_error(Reply{550, "5.1.1", "<postmaster>: Recipient address rejected: User unknown"});
      return;
    }
    mailbox = "postmaster@" + config_.postmaster_domain;
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
    reply(Reply{452, "4.5.3", "Error: too many recipients"});
    return;
  }
  group_slots_.push_back(slots_sent_ + slots_.size());
  slots_.push_back(Slot{false, {}});
  group_.push_back(RecipientRequest{std::move(mailbox)});
}

bool Session::cmd_data(std::string_view arg, bool more_input) {
  if (!in_transaction()) {
    reply_error(Reply{503, "5.5.1", "Error: need MAIL command"});
    return true;
  }
  if (rcpt_accepted_ == 0) {
    reply_error(Reply{554, "5.5.1", "Error: no valid recipients"});
    return true;
  }
  if (!arg.empty()) {
    reply_error(Reply{501, "5.5.4", "Syntax: DATA"});
    return true;
  }
  if (more_input) {
    // RFC 2920 §3.1: DATA ends a pipelined group; content must wait for 354.
    close_with(Reply{554, "5.5.0", "Error: SMTP protocol synchronization"});
    return false;
  }
  reply_raw("354 End data with <CR><LF>.<CR><LF>\r\n");
  mode_ = Mode::kData;
  data_.emplace(config_.max_message_size);
  return true;
}

void Session::handle_data(Actions&) {
  mode_ = Mode::kCommand;
  ++stats_.transactions;
  switch (data_->problem()) {
    case smtp::DataReader::Problem::kBareLf: reply_error(kBareLf); break;
    case smtp::DataReader::Problem::kBareCr: reply_error(kBareCr); break;
    case smtp::DataReader::Problem::kNul: reply_error(kNul); break;
    case smtp::DataReader::Problem::kTooBig: reply(Reply{552, "5.3.4", "Message size exceeds fixed limit"}); break;
    case smtp::DataReader::Problem::kNone:
      // Until live relay (#3) exists nothing may be acknowledged.
      reply(Reply{451, "4.3.0", "Error: message relay is not available, try again later"});
      break;
  }
  data_.reset();
  reset_transaction();
}

Actions Session::on_verdicts(std::vector<Verdict> verdicts) {
  if (verdicts.size() != group_.size()) return on_check_failed();
  Actions a;
  waiting_ = false;
  for (size_t i = 0; i < verdicts.size(); ++i) {
    Verdict& v = verdicts[i];
    Slot& slot = slots_[group_slots_[i] - slots_sent_];
    slot.ready = true;
    if (!consistent(v)) {
      slot.wire = lookup_failure(group_[i].mailbox).wire();
      ++stats_.rcpt_deferred;
      continue;
    }
    slot.wire = v.reply.wire();
    switch (v.decision) {
      case Verdict::Decision::kAccept:
        ++rcpt_accepted_;
        ++stats_.rcpt_accepted;
        break;
      case Verdict::Decision::kReject:
        ++stats_.rcpt_rejected;
        ++errors_;  // unknown recipients count: harvest defence
        ++stats_.errors;
        break;
      case Verdict::Decision::kDefer: ++stats_.rcpt_deferred; break;
    }
  }
  group_.clear();
  group_slots_.clear();
  if (errors_ >= config_.hard_error_limit) close_with(Reply{421, "4.7.0", config_.hostname + " Error: too many errors"});
  process(a);
  return a;
}

Actions Session::on_check_failed() {
  Actions a;
  waiting_ = false;
  for (size_t i = 0; i < group_.size(); ++i) {
    Slot& slot = slots_[group_slots_[i] - slots_sent_];
    slot.ready = true;
    slot.wire = lookup_failure(group_[i].mailbox).wire();
    ++stats_.rcpt_deferred;
  }
  group_.clear();
  group_slots_.clear();
  process(a);
  return a;
}

Actions Session::on_timeout() {
  Actions a;
  if (closed_) return a;
  a.output = Reply{421, "4.4.2", config_.hostname + " Error: timeout exceeded"}.wire();
  a.close = true;
  closed_ = true;
  return a;
}

Actions Session::on_shutdown() {
  Actions a;
  shutting_down_ = true;
  if (closed_) return a;
  if (!waiting_ && mode_ == Mode::kCommand) process(a);
  return a;
}

}  // namespace doorman::edge
