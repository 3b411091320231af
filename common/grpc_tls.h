// TLS and mutual TLS for Doorman's gRPC links: edge -> directory,
// doormanctl -> directory (issue #7).
//
// ServerTls / ClientTls name PEM files; empty names mean plaintext. check()
// validates a combination and reads every file once (so a typo is a clear
// start-up error, not a failing handshake later); the credentials then
// watch the files with grpc::experimental::FileWatcherCertificateProvider,
// re-reading them every `reload` period, so a renewed certificate (a
// cert-manager Secret) takes effect for new connections without a restart.
// A file that becomes unreadable keeps the last good certificate.
//
// Server: with client_ca_file set, a client must present a certificate
// signed by that CA (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY),
// else the handshake fails. Client: verifies the server against ca_file and
// checks its name (the target's host, or server_name when set: the
// grpc.ssl_target_name_override channel argument, for IP targets).
//
// SECURITY: the files are local and trusted; the peers' certificates are
// verified by gRPC (BoringSSL/OpenSSL), not here.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

namespace doorman::grpc_tls {

struct ServerTls {
  std::string cert_file;       // "" = plaintext
  std::string key_file;
  std::string client_ca_file;  // "" = no client certificates asked for
  std::chrono::seconds reload{60};
  bool enabled() const { return !cert_file.empty(); }
};

struct ClientTls {
  std::string ca_file;  // "" = plaintext
  std::string cert_file;  // client certificate for mTLS ("" = none)
  std::string key_file;
  std::string server_name;  // "" = the target's host name
  std::chrono::seconds reload{60};
  bool enabled() const { return !ca_file.empty(); }
};

// Reads a PEM file: "" and *pem, or an error naming the file. A file
// without a "-----BEGIN " line is an error.
std::string read_pem_file(const std::string& path, std::string* pem);

// "" or an error that starts with the option at fault. `prefix` is how the
// caller spells its options, e.g. "tls-" or "--tls-": the messages name
// prefix + "cert-file" etc.
std::string check(const ServerTls& tls, const std::string& prefix);
std::string check(const ClientTls& tls, const std::string& prefix);

// Plaintext credentials when !tls.enabled(). Call check() first.
std::shared_ptr<grpc::ServerCredentials> server_credentials(const ServerTls& tls);
// Also sets the target name override on `args` when tls.server_name is set.
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const ClientTls& tls, grpc::ChannelArguments* args);

}  // namespace doorman::grpc_tls
