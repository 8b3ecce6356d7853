// BackgroundFree: destroys objects on a thread of its own, so that the thread
// giving them up does not wait for their memory to be freed.
//
// Why: a hub's core (its topic store, histories and delivery state) is freed
// when its JS handle is collected, and V8 finalizes that handle on the JS
// thread. Freeing there blocked the event loop for as long as the store took
// to free: measured 144 ms for 100,000 small topics and about 2 s for
// 1,000,000 (`node --expose-gc bench/teardown.js`), in one piece, at a
// moment the application does not choose. The binding hands the core here
// instead.
//
// Rules:
// - free() takes ownership and returns at once; the object is destroyed on
//   the freeing thread, in the order handed over. Its destructor must not
//   need the giving thread (no N-API calls: the hub's core makes none).
// - The freeing thread runs only while there is something to free, and ends
//   when the queue is empty.
// - drain() waits until everything handed over so far is destroyed. The
//   process-wide instance (shared()) drains in its destructor, at exit, so
//   nothing handed over is left unfreed (leak checkers run after it).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace deltacast {

class BackgroundFree {
 public:
  BackgroundFree() = default;
  BackgroundFree(const BackgroundFree&) = delete;
  BackgroundFree& operator=(const BackgroundFree&) = delete;
  ~BackgroundFree();

  /** The process-wide instance (drained at exit). */
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
  void add(std::shared_ptr<void> object);
  void run();

  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::vector<std::shared_ptr<void>> queue_;
  std::thread thread_;
  bool running_ = false;
  std::size_t freed_ = 0;
};

}  // namespace deltacast
