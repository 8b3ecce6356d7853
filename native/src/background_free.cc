#include "deltacast/background_free.h"

#include <system_error>
#include <utility>

namespace deltacast {

BackgroundFree::~BackgroundFree() {
  drain();
  if (thread_.joinable()) thread_.join();
}

BackgroundFree& BackgroundFree::shared() {
  static BackgroundFree instance;
  return instance;
}

void BackgroundFree::add(std::shared_ptr<void> object) {
  std::thread ended;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(object));
    if (running_) return;        // the running thread takes it before it ends
    ended = std::move(thread_);  // one that ran before: it has left run() (running_ is false)
    try {
      thread_ = std::thread([this] { run(); });
      running_ = true;
    } catch (const std::system_error&) {
      object = std::move(queue_.back());  // no thread: freed here, below, as without this
      queue_.pop_back();
    }
  }
  if (ended.joinable()) ended.join();
  object.reset();
}

void BackgroundFree::run() {
  std::unique_lock lock(mutex_);
  while (!queue_.empty()) {
    std::vector<std::shared_ptr<void>> batch;
    batch.swap(queue_);
    lock.unlock();
    for (auto& object : batch) object.reset();  // in the order handed over
    const std::size_t n = batch.size();
    batch.clear();
    lock.lock();
    freed_ += n;
  }
  running_ = false;
  idle_.notify_all();
}

void BackgroundFree::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return !running_; });
}

std::size_t BackgroundFree::freed() const {
  std::lock_guard lock(mutex_);
  return freed_;
}

}  // namespace deltacast
