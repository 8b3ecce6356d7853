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
  // Not copied: view_ may point into owned_.
  JsonArgument(const JsonArgument&) = delete;
  JsonArgument& operator=(const JsonArgument&) = delete;
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

// diffJson's and diffJsonAsync's arguments: the two texts (checked) and the
// array key (an empty one turns keyed array matching off).
struct DiffArguments {
  JsonArgument a;
  JsonArgument b;
  deltacast::DiffOptions options;
  explicit DiffArguments(const Napi::CallbackInfo& info)
      : a(info[0], "the first document"), b(info[1], "the second document") {
    if (!a.ok()) throw argumentError(info.Env(), a);
    if (!b.ok()) throw argumentError(info.Env(), b);
    if (info.Length() > 2 && info[2].IsString()) options.arrayKey = info[2].As<Napi::String>().Utf8Value();
  }
};

// Parses both texts (the second guided by the first) into the given tapes and
// appends the patch to `out`; a parse error names its document.
deltacast::Status diffTexts(std::string_view a, std::string_view b, const deltacast::DiffOptions& options,
                            deltacast::JsonTape& tapeA, deltacast::JsonTape& tapeB, std::string& out) {
  if (deltacast::Status s = tapeA.parse(a); !s) return deltacast::Status(s.code(), "first document: " + s.message());
  if (deltacast::Status s = tapeB.parse(b, {}, &tapeA); !s) {
    return deltacast::Status(s.code(), "second document: " + s.message());
  }
  return deltacast::diffTapes(tapeA, tapeB, options, out);
}

// diffJsonAsync: the parse and the diff on a thread of libuv's pool, off
// the event loop. The texts are copied first (a Uint8Array may change while
// the work runs).
class DiffWorker : public Napi::AsyncWorker {
 public:
  DiffWorker(Napi::Env env, const DiffArguments& arguments)
      : Napi::AsyncWorker(env, "deltacast.diffJsonAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        a_(arguments.a.view()),
        b_(arguments.b.view()),
        options_(arguments.options) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    deltacast::JsonTape tapeA;
    deltacast::JsonTape tapeB;
    status_ = diffTexts(a_, b_, options_, tapeA, tapeB, out_);
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
    const DiffArguments arguments(info);
    // The tapes are reused from call to call: fresh multi-hundred-KB buffers
    // would come from mmap and cost a page fault per 4 KB touched.
    out_.clear();
    if (deltacast::Status s =
            diffTexts(arguments.a.view(), arguments.b.view(), arguments.options, tapeA_, tapeB_, out_);
        !s) {
      throw statusError(info.Env(), s);
    }
    return Napi::String::New(info.Env(), out_);
  }

  // diffJsonAsync(a, b, arrayKey: string) -> Promise<string>: diffJson, the
  // parse and diff on libuv's thread pool. Argument errors throw; errors of
  // the texts reject, with the same codes as diffJson's.
  Napi::Value DiffJsonAsync(const Napi::CallbackInfo& info) {
    const DiffArguments arguments(info);
    auto* worker = new DiffWorker(info.Env(), arguments);  // copies the texts
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
