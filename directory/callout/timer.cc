#include "directory/callout/timer.h"

namespace doorman::directory::callout {

void Timer::start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Timer::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  queue_.clear();
}

void Timer::at(Clock::time_point when, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.emplace(when, std::move(fn));
  }
  cv_.notify_all();
}

void Timer::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto it = queue_.begin();
    if (it->first > Clock::now()) {
      cv_.wait_until(lock, it->first);
      continue;
    }
    auto fn = std::move(it->second);
    queue_.erase(it);
    lock.unlock();
    fn();
    lock.lock();
  }
}

}  // namespace doorman::directory::callout
