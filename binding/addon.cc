// The Node binding: argument conversion and error mapping only. All the work
// happens in the core (native/), which knows nothing of Node.
//
// Thread affinity: everything here runs on the JS thread of the environment
// that loaded the addon. There is no per-environment state yet beyond the
// Addon instance itself; worker_threads each get their own.
#include <napi.h>

#include <string>
#include <string_view>

#include "deltacast/json_diff.h"
#include "deltacast/json_patch.h"
#include "hub.h"

namespace {

// A JS string (copied as UTF-8) or a Uint8Array/Buffer (viewed in place, no
// copy) as bytes of JSON text.
class JsonArgument {
 public:
  JsonArgument(const Napi::Value& value, const char* name) {
    if (value.IsString()) {
      owned_ = value.As<Napi::String>().Utf8Value();
      view_ = owned_;
    } else if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
      const auto bytes = value.As<Napi::Uint8Array>();
      view_ = std::string_view(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
    } else {
      ok_ = false;
      name_ = name;
    }
  }
  bool ok() const { return ok_; }
  std::string_view view() const { return view_; }
  const char* name() const { return name_; }

 private:
  std::string owned_;
  std::string_view view_;
  bool ok_ = true;
  const char* name_ = "";
};

Napi::Error makeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

Napi::Error statusError(Napi::Env env, const deltacast::Status& status) {
  return makeError(env, status.codeName(), status.message());
}

Napi::Error argumentError(Napi::Env env, const JsonArgument& argument) {
  return makeError(env, "DELTACAST_INVALID_ARGUMENT",
                   std::string(argument.name()) + " must be a string or a Uint8Array of JSON text");
}

// diffJsonAsync: the parse and the diff on a thread of libuv's pool, off
// the event loop. The texts are copied first (a Uint8Array may change while
// the work runs).
class DiffWorker : public Napi::AsyncWorker {
 public:
  DiffWorker(Napi::Env env, std::string a, std::string b, std::string arrayKey)
      : Napi::AsyncWorker(env, "deltacast.diffJsonAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        a_(std::move(a)),
        b_(std::move(b)) {
    options_.arrayKey = std::move(arrayKey);
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    deltacast::JsonTape tapeA;
    deltacast::JsonTape tapeB;
    if (deltacast::Status s = tapeA.parse(a_); !s) {
      status_ = deltacast::Status(s.code(), "first document: " + s.message());
      return;
    }
    if (deltacast::Status s = tapeB.parse(b_, {}, &tapeA); !s) {
      status_ = deltacast::Status(s.code(), "second document: " + s.message());
      return;
    }
    status_ = deltacast::diffTapes(tapeA, tapeB, options_, out_);
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_) {
      deferred_.Reject(statusError(env, status_).Value());
      return;
    }
    deferred_.Resolve(Napi::String::New(env, out_));
  }
  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }  // a bug, or out of memory

 private:
  Napi::Promise::Deferred deferred_;
  std::string a_;
  std::string b_;
  deltacast::DiffOptions options_;
  deltacast::Status status_;
  std::string out_;
};

class DeltacastAddon : public Napi::Addon<DeltacastAddon> {
 public:
  DeltacastAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod("diffJson", &DeltacastAddon::DiffJson),
                             InstanceMethod("diffJsonAsync", &DeltacastAddon::DiffJsonAsync),
                             InstanceMethod("applyPatchJson", &DeltacastAddon::ApplyPatchJson),
                             InstanceValue("NativeHub", deltacast_binding::NativeHub::Init(env)),
                         });
  }

 private:
  // diffJson(a, b, arrayKey: string) -> string (a JSON array of operations).
  // An empty arrayKey turns keyed array matching off.
  Napi::Value DiffJson(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const JsonArgument a(info[0], "the first document");
    if (!a.ok()) throw argumentError(env, a);
    const JsonArgument b(info[1], "the second document");
    if (!b.ok()) throw argumentError(env, b);
    deltacast::DiffOptions options;
    if (info.Length() > 2 && info[2].IsString()) options.arrayKey = info[2].As<Napi::String>().Utf8Value();
    // The tapes are reused from call to call: fresh multi-hundred-KB buffers
    // would come from mmap and cost a page fault per 4 KB touched.
    if (deltacast::Status s = tapeA_.parse(a.view()); !s) {
      throw statusError(env, deltacast::Status(s.code(), "first document: " + s.message()));
    }
    if (deltacast::Status s = tapeB_.parse(b.view(), {}, &tapeA_); !s) {
      throw statusError(env, deltacast::Status(s.code(), "second document: " + s.message()));
    }
    out_.clear();
    if (deltacast::Status s = deltacast::diffTapes(tapeA_, tapeB_, options, out_); !s) throw statusError(env, s);
    return Napi::String::New(env, out_);
  }

  // diffJsonAsync(a, b, arrayKey: string) -> Promise<string>: diffJson, the
  // parse and diff on libuv's thread pool. Argument errors throw; errors of
  // the texts reject, with the same codes as diffJson's.
  Napi::Value DiffJsonAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const JsonArgument a(info[0], "the first document");
    if (!a.ok()) throw argumentError(env, a);
    const JsonArgument b(info[1], "the second document");
    if (!b.ok()) throw argumentError(env, b);
    std::string arrayKey = deltacast::DiffOptions{}.arrayKey;
    if (info.Length() > 2 && info[2].IsString()) arrayKey = info[2].As<Napi::String>().Utf8Value();
    auto* worker = new DiffWorker(env, std::string(a.view()), std::string(b.view()), std::move(arrayKey));
    Napi::Promise promise = worker->promise();
    worker->Queue();  // deletes itself once settled
    return promise;
  }

  // applyPatchJson(doc, ops, maxOps) -> string (the patched document as JSON
  // text). maxOps: a positive integer checked by lib/index.js.
  Napi::Value ApplyPatchJson(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const JsonArgument doc(info[0], "the document");
    if (!doc.ok()) throw argumentError(env, doc);
    const JsonArgument ops(info[1], "the patch");
    if (!ops.ok()) throw argumentError(env, ops);
    deltacast::PatchLimits limits;
    if (info.Length() > 2 && info[2].IsNumber()) {
      limits.maxOps = static_cast<std::size_t>(info[2].As<Napi::Number>().Int64Value());
    }
    std::string out;
    if (const deltacast::Status status = deltacast::applyPatchJson(doc.view(), ops.view(), out, limits); !status) {
      throw statusError(env, status);
    }
    return Napi::String::New(env, out);
  }

  // Scratch space for diffJson, JS thread only. Torn down with the Addon
  // instance when its environment exits.
  deltacast::JsonTape tapeA_;
  deltacast::JsonTape tapeB_;
  std::string out_;
};

}  // namespace

NODE_API_ADDON(DeltacastAddon)
