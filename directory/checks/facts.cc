#include "directory/checks/facts.h"

namespace doorman::directory::checks {

doorman::v1::Verdict make_verdict(doorman::v1::Decision decision, unsigned code, std::string enhanced,
                                  std::string text, std::string reason, doorman::v1::Source source,
                                  doorman::v1::Reason why) {
  doorman::v1::Verdict v;
  v.set_decision(decision);
  v.set_code(code);
  v.set_enhanced_code(std::move(enhanced));
  v.set_text(std::move(text));
  v.set_reason(std::move(reason));
  v.set_source(source);
  v.set_reason_code(why);
  return v;
}

doorman::v1::Verdict make_accept(const Facts& f, std::string reason, doorman::v1::Source source,
                                 doorman::v1::Reason why) {
  auto v = make_verdict(doorman::v1::DECISION_ACCEPT, 250, "2.1.5", "OK", std::move(reason), source, why);
  if (f.config) {
    for (const auto& r : f.config->routes()) v.mutable_route()->add_hosts(r);
    v.set_domain(f.config->name());
  }
  return v;
}

std::string bracketed(const Facts& f) {
  if (!f.parsed.ok()) return "<" + f.address + ">";
  return "<" + f.parsed.mailbox.str() + ">";
}

}  // namespace doorman::directory::checks
