#include "common/run_guarded.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include <boost/asio/post.hpp>

namespace doorman {
namespace {

TEST(RunGuarded, AThrowingHandlerIsCountedAndTheLoopGoesOn) {
  boost::asio::io_context io;
  int ran = 0;
  int exceptions = 0;
  boost::asio::post(io, [&] { ++ran; });
  boost::asio::post(io, [] { throw std::runtime_error("set_option: Invalid argument"); });
  boost::asio::post(io, [&] { ++ran; });
  boost::asio::post(io, [] { throw 42; });  // not even a std::exception
  boost::asio::post(io, [&] { ++ran; });
  run_guarded(io, "test", [&] { ++exceptions; });
  EXPECT_EQ(ran, 3);
  EXPECT_EQ(exceptions, 2);
}

}  // namespace
}  // namespace doorman
