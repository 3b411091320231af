#include "common/options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace doorman {
namespace {

TEST(OptionsTest, PrecedenceFileEnvironmentFlags) {
  std::string file = ::testing::TempDir() + "/doorman-options-test.conf";
  std::ofstream(file) << "# comment\nname = from-file\ncount = 5\nflag = true\n";
  setenv("DOORMAN_TEST_COUNT", "6", 1);
  std::string name = "default";
  int64_t count = 1;
  bool flag = false;
  Options o("t", "DOORMAN_TEST", "test");
  o.add_string("name", &name, "a name");
  o.add_int("count", &count, 0, 10, "a count");
  o.add_bool("flag", &flag, "a flag");
  const char* argv[] = {"t", "--config", file.c_str(), "--name=from-flag", "positional"};
  EXPECT_EQ(o.parse(5, argv), "");
  EXPECT_EQ(name, "from-flag");
  EXPECT_EQ(count, 6);
  EXPECT_TRUE(flag);
  ASSERT_EQ(o.positional().size(), 1u);
  unsetenv("DOORMAN_TEST_COUNT");
}

// A removed option is refused with its reason from every source, and is not
// in --help (issue #12: --redis-password).
TEST(OptionsTest, RemovedOptionsAreRefusedWithTheirReason) {
  std::string file_value;
  auto make = [&](Options& o) {
    o.add_string("password-file", &file_value, "a file");
    o.add_removed("password", "visible in /proc; use --password-file");
  };
  Options flag("t", "DOORMAN_TEST", "test");
  make(flag);
  const char* with_value[] = {"t", "--password", "x"};
  EXPECT_EQ(flag.parse(3, with_value), "--password: option --password was removed: visible in /proc; use --password-file");
  Options eq("t", "DOORMAN_TEST", "test");
  make(eq);
  const char* with_eq[] = {"t", "--password=x"};
  EXPECT_NE(eq.parse(2, with_eq).find("was removed"), std::string::npos);
  std::string file = ::testing::TempDir() + "/doorman-options-removed.conf";
  std::ofstream(file) << "password = x\n";
  Options cfg("t", "DOORMAN_TEST", "test");
  make(cfg);
  const char* with_file[] = {"t", "--config", file.c_str()};
  EXPECT_NE(cfg.parse(3, with_file).find(":1: option --password was removed"), std::string::npos);
  setenv("DOORMAN_TEST_PASSWORD", "x", 1);
  Options env("t", "DOORMAN_TEST", "test");
  make(env);
  const char* bare[] = {"t"};
  EXPECT_NE(env.parse(1, bare).find("environment DOORMAN_TEST_PASSWORD: option --password was removed"),
            std::string::npos);
  unsetenv("DOORMAN_TEST_PASSWORD");
  Options help("t", "DOORMAN_TEST", "test");
  make(help);
  EXPECT_EQ(help.parse(1, bare), "");
  EXPECT_NE(help.help().find("--password-file"), std::string::npos);
  EXPECT_EQ(help.help().find("--password="), std::string::npos);
  EXPECT_EQ(help.help().find("--password\n"), std::string::npos);
}

TEST(OptionsTest, ErrorsNameTheOptionAndSource) {
  int64_t count = 1;
  Options o("t", "DOORMAN_TEST", "test");
  o.add_int("count", &count, 0, 10, "a count");
  const char* bad_range[] = {"t", "--count=11"};
  EXPECT_NE(o.parse(2, bad_range).find("count"), std::string::npos);
  Options o2("t", "DOORMAN_TEST", "test");
  o2.add_int("count", &count, 0, 10, "a count");
  const char* unknown[] = {"t", "--nope=1"};
  EXPECT_NE(o2.parse(2, unknown).find("unknown option --nope"), std::string::npos);
  Options o3("t", "DOORMAN_TEST", "test");
  o3.add_int("count", &count, 0, 10, "a count");
  const char* notint[] = {"t", "--count", "x"};
  EXPECT_NE(o3.parse(3, notint).find("not an integer"), std::string::npos);
  EXPECT_NE(o3.help().find("--count=VALUE"), std::string::npos);
}

}  // namespace
}  // namespace doorman
