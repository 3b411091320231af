#include "common/address_hash.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

namespace doorman {
namespace {

const std::string kKey = "0123456789abcdef0123456789abcdef";

TEST(AddressHash, IsATruncatedHmacSha256OfTheLowerCasedAddress) {
  // RFC 4231 test case 2 ("Jefe", "what do ya want for nothing?"): the
  // first 16 hex digits of its HMAC-SHA256.
  EXPECT_EQ(address_hash("Jefe", "what do ya want for nothing?"), "5bdcc146bf60754e");
  const std::string h = address_hash(kKey, "alice@example.com");
  EXPECT_EQ(h.size(), kHashHexChars);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos) << h;
  EXPECT_EQ(address_hash(kKey, "Alice@EXAMPLE.com"), h);  // case folds, as the directory compares
  EXPECT_NE(address_hash(kKey, "alice+x@example.com"), h);  // what the client sent
  EXPECT_NE(address_hash(kKey, "bob@example.com"), h);
  EXPECT_NE(address_hash("another key, 16+ bytes long", "alice@example.com"), h);  // keyed
  // `openssl dgst -sha256 -hmac` agrees, also for a key longer than the
  // block (hashed first, RFC 2104; the key of RFC 4231 test case 6).
  EXPECT_EQ(h, "841240d2a5b6654b");
  const std::string long_key(131, '\xaa');
  EXPECT_EQ(address_hash(long_key, "test using larger than block-size key - hash key first"), "707eaaac23838de8");
  // A hasher built once gives the same answers, from any thread.
  AddressHasher hasher(kKey);
  EXPECT_EQ(hasher.hash("alice@example.com"), h);
  std::string other;
  std::thread t([&] { other = hasher.hash("ALICE@example.com"); });
  t.join();
  EXPECT_EQ(other, h);
}

TEST(AddressHash, KeyFileIsReadWithoutItsNewlineAndMustBeLongEnough) {
  char dir[] = "/tmp/doorman-hash-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string good = std::string(dir) + "/key", short_key = std::string(dir) + "/short";
  std::ofstream(good) << kKey << "\n";
  std::ofstream(short_key) << "tooshort\n";
  std::string key;
  EXPECT_EQ(read_hash_key(good, &key), "");
  EXPECT_EQ(key, kKey);
  std::string err = read_hash_key(short_key, &key);
  EXPECT_NE(err.find("too short"), std::string::npos) << err;
  err = read_hash_key(std::string(dir) + "/missing", &key);
  EXPECT_NE(err.find("cannot read"), std::string::npos) << err;
  std::remove(good.c_str());
  std::remove(short_key.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace doorman
