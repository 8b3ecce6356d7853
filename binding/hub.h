// NativeHub: the JS handle of a HubCore (the topic store on its thread).
//
// Requests reach the core as one buffer of records per JS tick (submit; the
// format is in deltacast/request.h) and carry an id chosen by JS; completions
// come back in batches: the
// core thread calls one thread-safe function (no arguments) when its outbox
// becomes non-empty, and JS takes everything with take(): the answers, and
// the frames to send (each distinct frame once, then who gets which).
//
// Thread affinity: every method here is JS thread only, except the lambda
// handed to HubCore as `notify`, which runs on the core thread and only
// queues a call on the thread-safe function.
//
// Teardown (dispose, idempotent): stop and join the core thread first (so
// nothing can call the thread-safe function any more), then release the
// thread-safe function, then drop the environment cleanup hook. dispose runs
// from close(), from the GC finalizer, and from the environment cleanup hook
// at exit or worker termination, whichever comes first. The core itself is
// destroyed with the NativeHub, on the process's BackgroundFree thread.
#pragma once

#include <napi.h>

#include <memory>

#include "deltacast/hub_core.h"

namespace deltacast_binding {

class NativeHub : public Napi::ObjectWrap<NativeHub> {
 public:
  static Napi::Function Init(Napi::Env env);
  NativeHub(const Napi::CallbackInfo& info);
  ~NativeHub() override;

 private:
  Napi::Value Stage(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value Take(const Napi::CallbackInfo& info);
  Napi::Value Get(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Evictions(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  void dispose();
  static void cleanupHook(void* self);

  napi_env env_;
  Napi::ThreadSafeFunction notify_;  // created before the cleanup hook is registered
  std::unique_ptr<deltacast::HubCore> core_;
  std::vector<std::string> staged_;  // large payloads for the next submit()
  bool cleanupHookAdded_ = false;
  bool disposed_ = false;
};

}  // namespace deltacast_binding
