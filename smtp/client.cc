#include "smtp/client.h"

#include <utility>

#include "smtp/command.h"

namespace doorman::smtp {

ServerExtensions parse_ehlo_keywords(const std::vector<std::string>& lines) {
  ServerExtensions ext;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    std::string_view word = line.substr(0, line.find(' '));
    if (iequals(word, "PIPELINING")) ext.pipelining = true;
    if (iequals(word, "SIZE")) ext.size = true;
    if (iequals(word, "8BITMIME")) ext.eightbitmime = true;
    if (iequals(word, "STARTTLS")) ext.starttls = true;
  }
  return ext;
}

Client::Client(std::string helo_name, ClientTls tls) : helo_(std::move(helo_name)), tls_(tls) {}

void Client::start() {
  if (state_ != State::kIdle) return;
  state_ = State::kGreeting;
}

bool Client::wants_input() const {
  if (event_.kind != Event::Kind::kNone) return false;
  switch (state_) {
    case State::kGreeting:
    case State::kEhlo:
    case State::kHelo:
    case State::kStartTls:
    case State::kEhloAfterTls:
      return true;
    case State::kBusy:
      return due_ > 0;
    default:
      return false;
  }
}

void Client::feed(std::string_view bytes) {
  if (state_ == State::kFailed) return;
  in_.append(bytes);
  while (!in_.empty() && event_.kind == Event::Kind::kNone && state_ != State::kFailed) {
    if (!wants_input()) {
      // Nobody asked: a server that talks out of turn is not one to trust with the next transaction.
      fail(Failure::kProtocol, "unsolicited reply");
      return;
    }
    size_t used = parser_.feed(in_);
    in_.erase(0, used);
    if (parser_.error()) {
      fail(Failure::kProtocol, "malformed reply");
      return;
    }
    if (!parser_.has_reply()) break;
    on_reply(parser_.take());
  }
}

void Client::command(std::string_view line) {
  out_.append(line);
  out_.append("\r\n");
}

void Client::fail(Failure f, std::string detail) {
  state_ = State::kFailed;
  in_.clear();
  out_.clear();
  event_ = Event{};
  event_.kind = Event::Kind::kFailed;
  event_.failure = f;
  event_.detail = std::move(detail);
}

void Client::emit(Event::Kind kind) {
  event_ = Event{};
  event_.kind = kind;
}

void Client::opened() {
  state_ = State::kReady;
  emit(Event::Kind::kOpen);
}

void Client::on_reply(ParsedReply r) {
  const std::string code = std::to_string(r.code);
  switch (state_) {
    case State::kGreeting:
      if (r.code != 220) return fail(Failure::kRefused, "greeting " + code);
      state_ = State::kEhlo;
      return command("EHLO " + helo_);
    case State::kEhlo:
      if (r.code / 100 == 2) {
        ext_ = parse_ehlo_keywords(r.lines);
        if (tls_ == ClientTls::kNone) return opened();
        if (!ext_.starttls) {
          if (tls_ == ClientTls::kRequired) return fail(Failure::kTls, "STARTTLS not offered");
          return opened();
        }
        state_ = State::kStartTls;
        return command("STARTTLS");
      }
      // RFC 5321 §3.2: a server that does not know EHLO answers 5xx; try HELO.
      if (r.code / 100 != 5) return fail(Failure::kRefused, "EHLO " + code);
      state_ = State::kHelo;
      return command("HELO " + helo_);
    case State::kHelo:
      if (r.code / 100 != 2) return fail(Failure::kRefused, "HELO " + code);
      helo_only_ = true;
      ext_ = {};
      // HELO has no extensions, so no STARTTLS either.
      if (tls_ == ClientTls::kRequired) return fail(Failure::kTls, "STARTTLS not offered (HELO only)");
      return opened();
    case State::kStartTls:
      if (r.code != 220) {
        if (tls_ == ClientTls::kRequired) return fail(Failure::kTls, "STARTTLS " + code);
        starttls_refused_ = r.code;
        return opened();  // opportunistic: carry on in plaintext
      }
      // Bytes after the 220 arrived in plaintext: never read them as replies inside TLS.
      if (!in_.empty()) return fail(Failure::kProtocol, "data after 220 to STARTTLS");
      state_ = State::kHandshake;
      return emit(Event::Kind::kStartTls);
    case State::kEhloAfterTls:
      if (r.code / 100 != 2) return fail(Failure::kRefused, "EHLO after STARTTLS " + code);
      ext_ = parse_ehlo_keywords(r.lines);
      return opened();
    case State::kBusy:
      collected_.push_back(std::move(r));
      --due_;
      if (!ext_.pipelining && next_line_ < queued_.size()) command(queued_[next_line_++]);
      if (due_ == 0) {
        state_ = State::kReady;
        emit(Event::Kind::kReplies);
        event_.replies = std::move(collected_);
        collected_.clear();
      }
      return;
    default:
      return fail(Failure::kProtocol, "unsolicited reply");
  }
}

void Client::tls_done(bool ok, std::string detail) {
  if (state_ != State::kHandshake) return;
  if (!ok) return fail(Failure::kTls, detail.empty() ? std::string("TLS handshake failed") : std::move(detail));
  tls_active_ = true;
  ext_ = {};  // RFC 3207: forget what the plaintext EHLO said
  state_ = State::kEhloAfterTls;
  command("EHLO " + helo_);
}

void Client::transact(std::vector<std::string> lines) {
  if (state_ != State::kReady) return fail(Failure::kProtocol, "command while not ready");
  if (!in_.empty()) return fail(Failure::kProtocol, "unsolicited reply");
  state_ = State::kBusy;
  queued_ = std::move(lines);
  due_ = queued_.size();
  collected_.clear();
  if (queued_.empty()) {
    state_ = State::kReady;
    return emit(Event::Kind::kReplies);
  }
  next_line_ = ext_.pipelining ? queued_.size() : 1;
  for (size_t i = 0; i < next_line_; ++i) command(queued_[i]);
}

void Client::send(std::string bytes, size_t replies) {
  if (state_ != State::kReady) return fail(Failure::kProtocol, "data while not ready");
  if (!in_.empty()) return fail(Failure::kProtocol, "unsolicited reply");
  out_.append(bytes);
  queued_.clear();
  next_line_ = 0;
  due_ = replies;
  collected_.clear();
  if (replies == 0) return emit(Event::Kind::kReplies);
  state_ = State::kBusy;
}

std::string Client::take_output() { return std::exchange(out_, std::string()); }

Client::Event Client::take_event() { return std::exchange(event_, Event{}); }

}  // namespace doorman::smtp
