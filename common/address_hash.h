// The keyed hash of an address for logs (issue #14, --log-recipients hash):
// HMAC-SHA256 (OpenSSL) of the normalised address under a site key,
// truncated to kHashHexChars hex digits. Support staff holding the same key
// find an address's log lines with `doormanctl hash ADDRESS`; without the
// key the hash cannot be reversed by trying likely addresses (a plain
// SHA-256 of an address can: the address space is small).
//
// Normalisation: the address as the edge canonicalises it
// (smtp::Mailbox::str(): quotes only where needed, no angle brackets), then
// ASCII lower-cased as a whole - the directory's default rule (domains are
// case-insensitive, local parts compared case-insensitively unless a domain
// is case-sensitive). A case-sensitive domain's "Alice" and "alice" hash
// alike; sub-addresses are not cut ("alice+x" is not "alice"), as the log
// shows what the client sent.
//
// The key: the bytes of a file (one trailing newline removed), at least
// kMinKeyBytes; never on a command line. Pure apart from read_hash_key.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace doorman {

inline constexpr size_t kHashHexChars = 16;  // 64 bits: no collision in practice among millions of addresses
inline constexpr size_t kMinKeyBytes = 16;

// ASCII lower-case of an already canonical address.
std::string normalise_for_hash(std::string_view address);

// hex(HMAC-SHA256(key, normalise_for_hash(address)))[0:kHashHexChars].
std::string address_hash(std::string_view key, std::string_view address);

// The same with the key's HMAC state computed once (RFC 2104: the inner and
// outer SHA-256 states after the padded key), so a hash costs two SHA-256
// blocks and no OpenSSL fetch: the edge hashes two addresses per logged
// recipient. hash() is const and thread-safe.
class AddressHasher {
 public:
  explicit AddressHasher(std::string_view key);
  ~AddressHasher();
  AddressHasher(const AddressHasher&) = delete;
  AddressHasher& operator=(const AddressHasher&) = delete;
  std::string hash(std::string_view address) const;

 private:
  struct State;
  State* state_;
};

// Reads the key from `path`. Returns "" or an error (unreadable, too short).
std::string read_hash_key(const std::string& path, std::string* key);

}  // namespace doorman
