// A single timer thread: runs short callbacks at a point in time (wait
// budgets, polling another replica's probe). Callbacks must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

namespace doorman::directory::callout {

class Timer {
 public:
  using Clock = std::chrono::steady_clock;
  Timer() = default;
  ~Timer() { stop(); }
  void start();
  // Runs the callbacks that are due no later than now; drops the others.
  void stop();
  void at(Clock::time_point when, std::function<void()> fn);

 private:
  void loop();
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace doorman::directory::callout
