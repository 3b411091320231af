#include "common/address_hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

namespace doorman {

std::string normalise_for_hash(std::string_view address) {
  std::string out(address);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string address_hash(std::string_view key, std::string_view address) {
  const std::string text = normalise_for_hash(address);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(text.data()),
       text.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len && out.size() < kHashHexChars; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xf];
  }
  return out;
}

std::string read_hash_key(const std::string& path, std::string* key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read the hash key file " + path;
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string k = buf.str();
  if (!k.empty() && k.back() == '\n') k.pop_back();
  if (!k.empty() && k.back() == '\r') k.pop_back();
  if (k.size() < kMinKeyBytes)
    return "the hash key in " + path + " is too short (" + std::to_string(k.size()) + " bytes; at least " +
           std::to_string(kMinKeyBytes) + ", e.g. `openssl rand -hex 32`)";
  *key = std::move(k);
  return "";
}

}  // namespace doorman
