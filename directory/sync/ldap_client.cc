#include "directory/sync/ldap_client.h"

#include <ldap.h>
#include <sys/time.h>

#include <memory>
#include <vector>

namespace doorman::directory::sync {
namespace {

struct LdapCloser {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
struct MessageFree {
  void operator()(LDAPMessage* m) const { ldap_msgfree(m); }
};
using LdapHandle = std::unique_ptr<LDAP, LdapCloser>;
using Message = std::unique_ptr<LDAPMessage, MessageFree>;

Status fail(const doorman::v1::LdapSource& s, const std::string& what, int rc, LDAP* ld = nullptr) {
  std::string msg = "ldap " + s.url() + ": " + what + ": " + ldap_err2string(rc);
  if (ld) {
    char* diag = nullptr;
    if (ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag) {
      if (*diag) msg += " (" + std::string(diag) + ")";
      ldap_memfree(diag);
    }
  }
  return Status::Unavailable(msg);
}

int scope_of(const std::string& s) {
  if (s == "base") return LDAP_SCOPE_BASE;
  if (s == "one") return LDAP_SCOPE_ONELEVEL;
  return LDAP_SCOPE_SUBTREE;
}

}  // namespace

Status fetch_source(const doorman::v1::LdapSource& source, const std::string& password, const ValueSink& sink,
                    const PageHook& on_page, FetchStats* stats) {
  *stats = FetchStats();
  LDAP* raw = nullptr;
  int rc = ldap_initialize(&raw, source.url().c_str());
  if (rc != LDAP_SUCCESS) return fail(source, "bad url", rc);
  LdapHandle ld(raw);
  const int version = LDAP_VERSION3;
  ldap_set_option(ld.get(), LDAP_OPT_PROTOCOL_VERSION, &version);
  ldap_set_option(ld.get(), LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
  timeval timeout{static_cast<time_t>(source.timeout_seconds()), 0};
  ldap_set_option(ld.get(), LDAP_OPT_NETWORK_TIMEOUT, &timeout);
  ldap_set_option(ld.get(), LDAP_OPT_TIMEOUT, &timeout);
  if (source.tls() != "none") {
    // Per-handle TLS settings; NEWCTX makes them take effect for this handle.
    int require = source.tls_skip_verify() ? LDAP_OPT_X_TLS_NEVER : LDAP_OPT_X_TLS_DEMAND;
    ldap_set_option(ld.get(), LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
    if (!source.ca_file().empty()) {
      rc = ldap_set_option(ld.get(), LDAP_OPT_X_TLS_CACERTFILE, source.ca_file().c_str());
      if (rc != LDAP_OPT_SUCCESS) return fail(source, "ca_file " + source.ca_file(), rc);
    }
    const int is_server = 0;
    rc = ldap_set_option(ld.get(), LDAP_OPT_X_TLS_NEWCTX, &is_server);
    if (rc != LDAP_OPT_SUCCESS) return fail(source, "TLS context", rc, ld.get());
  }
  if (source.tls() == "starttls") {
    rc = ldap_start_tls_s(ld.get(), nullptr, nullptr);
    if (rc != LDAP_SUCCESS) return fail(source, "StartTLS", rc, ld.get());
  }
  berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
  rc = ldap_sasl_bind_s(ld.get(), source.bind_dn().empty() ? nullptr : source.bind_dn().c_str(), LDAP_SASL_SIMPLE,
                        &cred, nullptr, nullptr, nullptr);
  if (rc != LDAP_SUCCESS) return fail(source, "bind as '" + source.bind_dn() + "'", rc, ld.get());

  std::vector<char*> attrs;
  for (const auto& a : source.attributes()) attrs.push_back(const_cast<char*>(a.c_str()));
  attrs.push_back(nullptr);
  berval cookie{0, nullptr};
  struct CookieFree {
    berval* c;
    ~CookieFree() {
      if (c->bv_val) ber_memfree(c->bv_val);
    }
  } cookie_free{&cookie};
  do {
    LDAPControl* page = nullptr;
    rc = ldap_create_page_control(ld.get(), static_cast<ber_int_t>(source.page_size()), &cookie, 1, &page);
    if (rc != LDAP_SUCCESS) return fail(source, "paged results control", rc, ld.get());
    LDAPControl* controls[] = {page, nullptr};
    int msgid = 0;
    rc = ldap_search_ext(ld.get(), source.base_dn().c_str(), scope_of(source.scope()), source.filter().c_str(),
                         attrs.data(), 0, controls, nullptr, &timeout, LDAP_NO_LIMIT, &msgid);
    ldap_control_free(page);
    if (rc != LDAP_SUCCESS) return fail(source, "search", rc, ld.get());
    bool done = false;
    while (!done) {
      LDAPMessage* raw_msg = nullptr;
      rc = ldap_result(ld.get(), msgid, LDAP_MSG_ONE, &timeout, &raw_msg);
      Message msg(raw_msg);
      if (rc == 0) return fail(source, "search", LDAP_TIMEOUT);
      if (rc < 0) {
        int err = LDAP_OTHER;
        ldap_get_option(ld.get(), LDAP_OPT_RESULT_CODE, &err);
        return fail(source, "search", err, ld.get());
      }
      switch (ldap_msgtype(msg.get())) {
        case LDAP_RES_SEARCH_ENTRY: {
          ++stats->entries;
          BerElement* ber = nullptr;
          for (char* a = ldap_first_attribute(ld.get(), msg.get(), &ber); a;
               a = ldap_next_attribute(ld.get(), msg.get(), ber)) {
            if (berval** values = ldap_get_values_len(ld.get(), msg.get(), a)) {
              for (berval** v = values; *v; ++v) sink(a, std::string_view((*v)->bv_val, (*v)->bv_len));
              ldap_value_free_len(values);
            }
            ldap_memfree(a);
          }
          if (ber) ber_free(ber, 0);
          break;
        }
        case LDAP_RES_SEARCH_REFERENCE:
          ++stats->references;
          break;
        case LDAP_RES_SEARCH_RESULT: {
          done = true;
          int result = LDAP_SUCCESS;
          char* text = nullptr;
          LDAPControl** returned = nullptr;
          rc = ldap_parse_result(ld.get(), msg.get(), &result, nullptr, &text, nullptr, &returned, 0);
          std::string diag = text ? text : "";
          if (text) ldap_memfree(text);
          if (rc != LDAP_SUCCESS || result != LDAP_SUCCESS) {
            if (returned) ldap_controls_free(returned);
            Status s = fail(source, "search", rc != LDAP_SUCCESS ? rc : result);
            if (!diag.empty()) s.message += " (" + diag + ")";
            return s;
          }
          if (cookie.bv_val) ber_memfree(cookie.bv_val);
          cookie = berval{0, nullptr};
          LDAPControl* response = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, returned, nullptr);
          if (response) {
            ber_int_t estimate = 0;
            rc = ldap_parse_pageresponse_control(ld.get(), response, &estimate, &cookie);
          }
          if (returned) ldap_controls_free(returned);
          if (rc != LDAP_SUCCESS) return fail(source, "paged results response", rc, ld.get());
          break;
        }
        default:
          break;
      }
    }
    ++stats->pages;
    if (on_page && !on_page(*stats)) return Status::Unavailable("ldap " + source.url() + ": search aborted");
  } while (cookie.bv_len > 0);
  return Status::Ok();
}

}  // namespace doorman::directory::sync
