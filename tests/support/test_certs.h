// Test support: a throwaway PKI made with the real `openssl` command line
// tool, for tests of STARTTLS and of mTLS between edge and directory.
//
// make_test_pki(dir) writes into `dir`: ca.pem / ca.key (a self-signed CA),
// server.pem / server.key (CN and subjectAltName "localhost", DNS:localhost
// and IP:127.0.0.1, signed by the CA, serverAuth) and client.pem / client.key
// (CN "doorman-edge", clientAuth, signed by the CA). A second call with
// `other_ca` makes an unrelated CA and a client signed by it
// (rogue-ca.pem, rogue-client.pem / rogue-client.key): a client the server
// must refuse. Keys are ECDSA P-256, valid for one day.
#pragma once

#include <string>

namespace doorman::test {

struct TestPki {
  std::string dir;
  std::string ca_cert, ca_key;
  std::string server_cert, server_key;
  std::string client_cert, client_key;
  std::string rogue_client_cert, rogue_client_key;  // signed by another CA
  std::string error;  // "" on success, else what openssl said
  bool ok() const { return error.empty(); }
};

// Makes the files above in `dir` (which must exist).
TestPki make_test_pki(const std::string& dir);

// Makes a new server certificate/key for "localhost" signed by the same CA
// into `cert` and `key` (to test certificate reload). Returns "" or an error.
std::string make_server_cert(const TestPki& pki, const std::string& cert, const std::string& key,
                             const std::string& cn = "localhost");

}  // namespace doorman::test
