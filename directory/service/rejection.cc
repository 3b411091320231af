#include "directory/service/rejection.h"

#include <string>

namespace doorman::directory::service {

namespace v1 = doorman::v1;

v1::RejectionVerdict rejection_verdict(const v1::Domain& d, const std::string& unreachable) {
  v1::RejectionVerdict v;
  auto no = [&v](std::string reason) {
    v.set_rejecting(false);
    v.set_reason(std::move(reason));
    return v;
  };
  if (d.mode() == v1::DOMAIN_MODE_ACCEPT_ALL)
    return no("accept-all mode: every address is passed to the back-end");
  if (d.has_enforce() && !d.enforce()) {
    return no("shadow mode (enforce off): unknown recipients are logged and counted (" +
              std::to_string(d.shadow().would_reject()) + " so far) and passed to the back-end");
  }
  const bool callout = d.mode() == v1::DOMAIN_MODE_CALLOUT || d.callout_fallback();
  if (d.mode() == v1::DOMAIN_MODE_LIST && d.address_count() == 0 && !d.callout_fallback())
    return no("address list is empty: nothing is listed yet, so every recipient is refused, valid ones too");
  if (callout) {
    if (!unreachable.empty())
      return no("callout back-end unreachable (" + unreachable + "): unknown recipients are deferred, not rejected");
    if (d.catch_all().state() == v1::CatchAllStatus::STATE_CATCH_ALL) {
      return no(d.catch_all_policy() == v1::CATCH_ALL_POLICY_DEFER
                    ? "callout back-end is a catch-all (accepts any address): unknown recipients are deferred"
                    : "callout back-end is a catch-all (accepts any address): unknown recipients are accepted and "
                      "bounced later by the back-end");
    }
    v.set_rejecting(true);
    if (d.catch_all().state() == v1::CatchAllStatus::STATE_UNKNOWN)
      v.set_reason("catch-all status not probed yet: rejecting as long as the back-end rejects unknown addresses");
    return v;
  }
  v.set_rejecting(true);
  return v;
}

}  // namespace doorman::directory::service
