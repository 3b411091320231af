// Does a guarded domain reject unknown recipients (550 5.1.1), and if not,
// why? One pure function, the single place that answers it: the admin API
// fills Domain.rejecting_unknown with it (ListDomains, GetDomain), so the
// web console's overview and `doormanctl domain list` say the same.
//
//   accept-all mode                 no: every address goes to the back-end
//   shadow mode (enforce false)     no: unknown recipients are logged and
//                                   passed on (issue #14)
//   list mode, empty list           no: nothing is listed yet (every
//                                   recipient is refused, valid ones too)
//   callout (or list + fallback):
//     back-end unreachable          no: unknown recipients are deferred
//     back-end is a catch-all       no: accepted (policy accept) or
//                                   deferred (policy defer)
//     catch-all status not probed   yes, with that caveat
//   otherwise                       yes
//
// `unreachable` is the error of this replica's last probe of the domain
// when no back-end answered ("" = none; callout::Callout::unreachable).
#pragma once

#include <string>

#include "doorman/v1/admin.pb.h"

namespace doorman::directory::service {

doorman::v1::RejectionVerdict rejection_verdict(const doorman::v1::Domain& d, const std::string& unreachable);

}  // namespace doorman::directory::service
