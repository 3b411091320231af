#include "common/grpc_tls.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>
#include <initializer_list>
#include <sstream>

namespace doorman::grpc_tls {
namespace {

namespace gx = grpc::experimental;

struct NamedFile {
  const char* option;  // without the prefix
  const std::string* path;
};

// "" or an error about the first file that cannot be used.
std::string check_files(const std::string& prefix, std::initializer_list<NamedFile> files) {
  for (const auto& [name, path] : files) {
    if (path->empty()) continue;
    std::string pem;
    if (std::string err = read_pem_file(*path, &pem); !err.empty()) return prefix + name + ": " + err;
  }
  return "";
}

unsigned int seconds(std::chrono::seconds s) { return static_cast<unsigned int>(s.count() < 1 ? 1 : s.count()); }

}  // namespace

std::string read_pem_file(const std::string& path, std::string* pem) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "cannot read " + path;
  std::ostringstream s;
  s << f.rdbuf();
  if (s.str().find("-----BEGIN ") == std::string::npos) return path + " is not a PEM file";
  *pem = s.str();
  return "";
}

std::string check(const ServerTls& t, const std::string& p) {
  if (!t.cert_file.empty() && t.key_file.empty()) return p + "cert-file is set but " + p + "key-file is not";
  if (t.cert_file.empty() && !t.key_file.empty()) return p + "key-file is set but " + p + "cert-file is not";
  if (t.cert_file.empty() && !t.client_ca_file.empty())
    return p + "client-ca-file needs TLS: set " + p + "cert-file and " + p + "key-file too";
  return check_files(p,
                     {{"cert-file", &t.cert_file}, {"key-file", &t.key_file}, {"client-ca-file", &t.client_ca_file}});
}

std::string check(const ClientTls& t, const std::string& p) {
  if (!t.cert_file.empty() && t.key_file.empty()) return p + "cert-file is set but " + p + "key-file is not";
  if (t.cert_file.empty() && !t.key_file.empty()) return p + "key-file is set but " + p + "cert-file is not";
  if (t.ca_file.empty() && !t.cert_file.empty())
    return p + "cert-file needs TLS: set " + p + "ca-file (the CA that signed the server's certificate)";
  if (t.ca_file.empty() && !t.server_name.empty()) return p + "server-name needs TLS: set " + p + "ca-file";
  return check_files(p, {{"ca-file", &t.ca_file}, {"cert-file", &t.cert_file}, {"key-file", &t.key_file}});
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const ServerTls& t) {
  if (!t.enabled()) return grpc::InsecureServerCredentials();
  auto files = std::make_shared<gx::FileWatcherCertificateProvider>(t.key_file, t.cert_file, t.client_ca_file,
                                                                     seconds(t.reload));
  gx::TlsServerCredentialsOptions options(files);
  options.watch_identity_key_cert_pairs();
  if (!t.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const ClientTls& t, grpc::ChannelArguments* args) {
  if (!t.enabled()) return grpc::InsecureChannelCredentials();
  auto files = t.cert_file.empty()
                   ? std::make_shared<gx::FileWatcherCertificateProvider>(t.ca_file, seconds(t.reload))
                   : std::make_shared<gx::FileWatcherCertificateProvider>(t.key_file, t.cert_file, t.ca_file,
                                                                          seconds(t.reload));
  gx::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(files);
  options.watch_root_certs();
  if (!t.cert_file.empty()) options.watch_identity_key_cert_pairs();
  // Spelled out: the chain is verified against ca_file and the name against
  // the certificate's subjectAltNames.
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(std::make_shared<gx::HostNameCertificateVerifier>());
  if (!t.server_name.empty()) args->SetSslTargetNameOverride(t.server_name);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace doorman::grpc_tls
