#include "edge/decision_log.h"

#include "common/log.h"

namespace doorman::edge {

bool parse_recipient_log_mode(std::string_view text, RecipientLogMode* out) {
  if (text == "clear") *out = RecipientLogMode::kClear;
  else if (text == "hash") *out = RecipientLogMode::kHash;
  else if (text == "none") *out = RecipientLogMode::kNone;
  else return false;
  return true;
}

namespace {

std::string_view verdict_word(RcptVerdict v) { return label(v); }

std::string domain_of(std::string_view mailbox) {
  const size_t at = mailbox.rfind('@');
  if (at == std::string_view::npos) return "";
  std::string d(mailbox.substr(at + 1));
  for (char& c : d)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return d;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> DecisionLog::fields(const RcptDecision& d,
                                                                     const DecisionContext& c) const {
  std::vector<std::pair<std::string, std::string>> f;
  f.emplace_back("session", std::string(c.session));
  f.emplace_back("client", std::string(c.client));
  switch (mode_) {
    case RecipientLogMode::kClear:
      f.emplace_back("from", "<" + std::string(d.sender) + ">");
      f.emplace_back("to", "<" + d.mailbox + ">");
      break;
    case RecipientLogMode::kHash:
      if (d.sender.empty()) f.emplace_back("from", "<>");
      else f.emplace_back("from_hash", hasher_->hash(d.sender));
      f.emplace_back("to_hash", hasher_->hash(d.mailbox));
      f.emplace_back("to_domain", domain_of(d.mailbox));
      break;
    case RecipientLogMode::kNone:
      if (d.sender.empty()) f.emplace_back("from", "<>");
      f.emplace_back("to_domain", domain_of(d.mailbox));
      break;
  }
  f.emplace_back("verdict", std::string(verdict_word(d.verdict)));
  f.emplace_back("code", std::to_string(d.reply.code));
  if (!d.reply.enhanced.empty()) f.emplace_back("enhanced", d.reply.enhanced);
  f.emplace_back("reason", std::string(label(d.reason)));
  f.emplace_back("source", std::string(label(d.source)));
  if (d.would_reject) {
    f.emplace_back("would_reject", std::string(label(*d.would_reject)));
    if (d.would_code) f.emplace_back("would_code", std::to_string(d.would_code));
  }
  if (d.cache_age) f.emplace_back("cache_age_seconds", std::to_string(d.cache_age->count() / 1000));
  if (!d.source_name.empty()) f.emplace_back("source_name", d.source_name);
  return f;
}

void DecisionLog::write(const RcptDecision& d, const DecisionContext& c) const {
  if (!log::enabled(log::Level::kInfo)) return;
  log::Line line(log::Level::kInfo, "rcpt");
  for (const auto& [k, v] : fields(d, c)) line.kv(k, v);
}

}  // namespace doorman::edge
