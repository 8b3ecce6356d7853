#include "deltacast/background_free.h"

#include <system_error>
#include <utility>

namespace deltacast {

BackgroundFree::~BackgroundFree() {
  std::unique_lock lock(queue_->mutex);
  const auto stopped = [this] { return !queue_->running; };
  bool idle = true;
  if (waitOnDestroy_ == std::chrono::milliseconds::max()) {
    queue_->idle.wait(lock, stopped);
  } else {
    idle = queue_->idle.wait_for(lock, waitOnDestroy_, stopped);
  }
  std::thread thread = std::move(thread_);
  lock.unlock();
  if (!thread.joinable()) return;
  if (idle) {
    thread.join();  // it has left the loop (running is false): returns at once
  } else {
    thread.detach();  // still freeing: it holds the queue, and ends on its own
  }
}

BackgroundFree& BackgroundFree::shared() {
  static BackgroundFree instance(std::chrono::milliseconds(500));
  return instance;
}

void BackgroundFree::add(std::shared_ptr<void> object) {
  std::thread ended;
  {
    std::lock_guard lock(queue_->mutex);
    queue_->objects.push_back(std::move(object));
    if (queue_->running) return;  // the running thread takes it before it ends
    ended = std::move(thread_);   // one that ran before: it has left the loop (running is false)
    try {
      thread_ = std::thread(run, queue_);
      queue_->running = true;
    } catch (const std::system_error&) {
      object = std::move(queue_->objects.back());  // no thread: freed here, below, as without this
      queue_->objects.pop_back();
    }
  }
  if (ended.joinable()) ended.join();
  object.reset();
}

void BackgroundFree::run(const std::shared_ptr<Queue>& queue) {
  std::unique_lock lock(queue->mutex);
  while (!queue->objects.empty()) {
    std::vector<std::shared_ptr<void>> batch;
    batch.swap(queue->objects);
    lock.unlock();
    for (auto& object : batch) object.reset();  // in the order handed over
    const std::size_t n = batch.size();
    batch.clear();
    lock.lock();
    queue->freed += n;
  }
  queue->running = false;
  queue->idle.notify_all();
}

void BackgroundFree::drain() {
  std::unique_lock lock(queue_->mutex);
  queue_->idle.wait(lock, [this] { return !queue_->running; });
}

std::size_t BackgroundFree::freed() const {
  std::lock_guard lock(queue_->mutex);
  return queue_->freed;
}

}  // namespace deltacast
