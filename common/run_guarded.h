// Runs an io_context so that one exception escaping a handler does not end
// the process (issue #12): it is logged (`event=handler_exception`) and
// counted through `on_exception`, and the loop goes on with the next handler.
// Asio leaves the io_context usable after a handler throws; run() is simply
// called again. The data path uses the error_code overloads and should never
// throw: this is the net under it, for a bug, not a way to report errors.
#pragma once

#include <utility>  // before Asio with g++ 12 and Boost 1.74
#include <boost/asio/io_context.hpp>

#include <exception>
#include <functional>
#include <string_view>

#include "common/log.h"

namespace doorman {

inline void run_guarded(boost::asio::io_context& io, std::string_view who,
                        const std::function<void()>& on_exception = {}) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      log::error("handler_exception").kv("thread", who).kv("error", e.what());
    } catch (...) {
      log::error("handler_exception").kv("thread", who).kv("error", "unknown exception");
    }
    if (on_exception) on_exception();
  }
}

}  // namespace doorman
