#include "common/address_hash.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>
#include <sstream>

namespace doorman {

std::string normalise_for_hash(std::string_view address) {
  std::string out(address);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

namespace {
constexpr size_t kBlock = 64;  // SHA-256 block size

struct MdCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~MdCtx() { EVP_MD_CTX_free(ctx); }
};
}  // namespace

struct AddressHasher::State {
  MdCtx inner;  // SHA-256 after (key ^ ipad)
  MdCtx outer;  // SHA-256 after (key ^ opad)
};

AddressHasher::AddressHasher(std::string_view key) : state_(new State) {
  std::array<unsigned char, kBlock> k{};
  if (key.size() > kBlock) {
    unsigned int n = 0;
    EVP_Digest(key.data(), key.size(), k.data(), &n, EVP_sha256(), nullptr);
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<unsigned char, kBlock> ipad{}, opad{};
  for (size_t i = 0; i < kBlock; ++i) {
    ipad[i] = static_cast<unsigned char>(k[i] ^ 0x36);
    opad[i] = static_cast<unsigned char>(k[i] ^ 0x5c);
  }
  EVP_DigestInit_ex(state_->inner.ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(state_->inner.ctx, ipad.data(), ipad.size());
  EVP_DigestInit_ex(state_->outer.ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(state_->outer.ctx, opad.data(), opad.size());
}

AddressHasher::~AddressHasher() { delete state_; }

std::string AddressHasher::hash(std::string_view address) const {
  const std::string text = normalise_for_hash(address);
  thread_local MdCtx scratch;
  unsigned char inner[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
  unsigned int inner_len = 0, len = 0;
  EVP_MD_CTX_copy_ex(scratch.ctx, state_->inner.ctx);
  EVP_DigestUpdate(scratch.ctx, text.data(), text.size());
  EVP_DigestFinal_ex(scratch.ctx, inner, &inner_len);
  EVP_MD_CTX_copy_ex(scratch.ctx, state_->outer.ctx);
  EVP_DigestUpdate(scratch.ctx, inner, inner_len);
  EVP_DigestFinal_ex(scratch.ctx, mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len && out.size() < kHashHexChars; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xf];
  }
  return out;
}

std::string address_hash(std::string_view key, std::string_view address) { return AddressHasher(key).hash(address); }

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
