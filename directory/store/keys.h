// The Redis key schema of the directory, spelled here and nowhere else.
//
// Every key starts with "doorman:v1:" so that a shared Redis can host other
// data and a future schema can live beside this one.
//
//   doorman:v1:domains               SET   guarded domain names, lower-case
//   doorman:v1:domain:{name}         HASH  one guarded domain:
//        mode                  "list" | "callout" | "accept-all"
//        routes                back-end "host:port" list, comma-separated,
//                              in priority order
//        case_sensitive        "0" | "1" (local parts compared as given)
//        subaddress_separator  "" = sub-addressing off; field absent = "+"
//   doorman:v1:addresses:{name}      SET   normalised local parts of the
//                                          domain's list (see normalise.h)
//   doorman:v1:tmp:replace:{name}:{nonce}
//                                    SET   a list being replaced; RENAMEd
//                                          onto addresses:{name} at the end
//                                          of ReplaceAddresses. Carries a TTL
//                                          (kTmpTtlSeconds) so an abandoned
//                                          stream cleans itself up.
//
// The domain name inside a key is already validated and lower-cased; it can
// not contain ':' or spaces (smtp::is_valid_domain), so keys cannot collide.
#pragma once

#include <string>
#include <string_view>

namespace doorman::directory::store::keys {

inline constexpr std::string_view kPrefix = "doorman:v1:";
inline constexpr int kTmpTtlSeconds = 3600;

// Hash field names of domain:{name}.
inline constexpr std::string_view kFieldMode = "mode";
inline constexpr std::string_view kFieldRoutes = "routes";
inline constexpr std::string_view kFieldCaseSensitive = "case_sensitive";
inline constexpr std::string_view kFieldSeparator = "subaddress_separator";

inline std::string domains() { return std::string(kPrefix) + "domains"; }
inline std::string domain(std::string_view name) { return std::string(kPrefix) + "domain:" + std::string(name); }
inline std::string addresses(std::string_view name) {
  return std::string(kPrefix) + "addresses:" + std::string(name);
}
inline std::string tmp_replace(std::string_view name, std::string_view nonce) {
  return std::string(kPrefix) + "tmp:replace:" + std::string(name) + ":" + std::string(nonce);
}

}  // namespace doorman::directory::store::keys
