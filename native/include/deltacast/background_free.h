// BackgroundFree: destroys objects on a thread of its own, so that the thread
// giving them up does not wait for their memory to be freed.
//
// Why: a hub's core (its topic store, histories and delivery state) is freed
// when its JS handle is collected, and V8 finalizes that handle on the JS
// thread. Freeing there blocked the event loop for as long as the store took
// to free: 120 ms for 100,000 small topics and 1.9 s for 1,000,000
// (`node bench/teardown.js`), in one piece, at a moment the application does
// not choose. The binding hands the core here instead.
//
// Rules:
// - free() takes ownership and returns at once; the object is destroyed on
//   the freeing thread, in the order handed over. Its destructor must not
//   need the giving thread (no N-API calls: the hub's core makes none).
// - The freeing thread runs only while there is something to free, and ends
//   when the queue is empty. It shares its queue with the instance, so it may
//   outlive it (below).
// - drain() waits until everything handed over so far is destroyed.
// - The destructor waits for the same, at most `waitOnDestroy`; past that the
//   freeing thread is left to finish on its own. The process-wide instance
//   (shared()) waits 500 ms, at exit: a process does not wait seconds to
//   free a large store the system reclaims anyway, and a small one (what a
//   leak checker's workload leaves) is freed within it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace deltacast {

class BackgroundFree {
 public:
  explicit BackgroundFree(std::chrono::milliseconds waitOnDestroy = std::chrono::milliseconds::max())
      : waitOnDestroy_(waitOnDestroy) {}
  BackgroundFree(const BackgroundFree&) = delete;
  BackgroundFree& operator=(const BackgroundFree&) = delete;
  ~BackgroundFree();

  /** The process-wide instance (at exit, waits up to 500 ms for what it was given). */
  static BackgroundFree& shared();

  /**
   * Destroys `object` on the freeing thread (started if none runs). Should
   * no thread start (resources), it is destroyed here, as without this.
   */
  template <class T>
  void free(std::unique_ptr<T> object) {
    if (object) add(std::shared_ptr<void>(std::move(object)));
  }

  /** Returns once everything handed over before the call is destroyed. */
  void drain();

  /** Objects destroyed on the freeing thread so far. */
  std::size_t freed() const;

 private:
  // What the freeing thread shares with the instance (it may outlive it).
  struct Queue {
    std::mutex mutex;
    std::condition_variable idle;
    std::vector<std::shared_ptr<void>> objects;
    bool running = false;
    std::size_t freed = 0;
  };

  void add(std::shared_ptr<void> object);
  static void run(const std::shared_ptr<Queue>& queue);

  const std::chrono::milliseconds waitOnDestroy_;
  const std::shared_ptr<Queue> queue_ = std::make_shared<Queue>();
  std::thread thread_;  // guarded by queue_->mutex
};

}  // namespace deltacast
