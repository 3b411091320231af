#include "tests/support/test_certs.h"

#include <fstream>

#include "tests/support/process.h"

namespace doorman::test {

namespace {

std::string openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult r = run(argv, std::chrono::seconds(30));
  if (r.exit_code != 0) return "openssl " + args.front() + " failed (" + std::to_string(r.exit_code) + "): " + r.err;
  return "";
}

std::string write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  return f.good() ? "" : "cannot write " + path;
}

std::string make_key(const std::string& path) {
  return openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path});
}

std::string make_ca(const std::string& name, const std::string& cert, const std::string& key) {
  if (std::string e = make_key(key); !e.empty()) return e;
  return openssl({"req", "-x509", "-new", "-key", key, "-out", cert, "-days", "1", "-subj", "/CN=" + name,
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
}

// A leaf certificate for `cn` signed by ca_cert/ca_key with the extensions in `ext`.
std::string make_leaf(const std::string& ca_cert, const std::string& ca_key,
                      const std::string& cn, const std::string& ext, const std::string& cert, const std::string& key) {
  if (std::string e = make_key(key); !e.empty()) return e;
  std::string csr = cert + ".csr";
  std::string ext_file = cert + ".ext";
  if (std::string e = openssl({"req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn}); !e.empty()) return e;
  if (std::string e = write_file(ext_file, ext); !e.empty()) return e;
  return openssl({"x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
                  "-days", "1", "-extfile", ext_file});
}

const char* kServerExt =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
const char* kClientExt =
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    "subjectAltName=DNS:doorman-edge\n";

}  // namespace

TestPki make_test_pki(const std::string& dir) {
  TestPki p;
  p.dir = dir;
  p.ca_cert = dir + "/ca.pem";
  p.ca_key = dir + "/ca.key";
  p.server_cert = dir + "/server.pem";
  p.server_key = dir + "/server.key";
  p.client_cert = dir + "/client.pem";
  p.client_key = dir + "/client.key";
  p.rogue_client_cert = dir + "/rogue-client.pem";
  p.rogue_client_key = dir + "/rogue-client.key";
  std::string rogue_ca = dir + "/rogue-ca.pem", rogue_ca_key = dir + "/rogue-ca.key";
  if ((p.error = make_ca("Doorman Test CA", p.ca_cert, p.ca_key)).size()) return p;
  if ((p.error = make_leaf(p.ca_cert, p.ca_key, "localhost", kServerExt, p.server_cert, p.server_key)).size())
    return p;
  if ((p.error = make_leaf(p.ca_cert, p.ca_key, "doorman-edge", kClientExt, p.client_cert, p.client_key)).size())
    return p;
  if ((p.error = make_ca("Rogue CA", rogue_ca, rogue_ca_key)).size()) return p;
  p.error = make_leaf(rogue_ca, rogue_ca_key, "doorman-edge", kClientExt, p.rogue_client_cert,
                      p.rogue_client_key);
  return p;
}

std::string make_server_cert(const TestPki& pki, const std::string& cert, const std::string& key,
                             const std::string& cn) {
  return make_leaf(pki.ca_cert, pki.ca_key, cn, kServerExt, cert, key);
}

}  // namespace doorman::test
