#include "hub.h"

#include <optional>
#include <string>
#include <unordered_map>

#include "deltacast/json_patch.h"

namespace deltacast_binding {

namespace {

Napi::Error makeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// Bytes of a string (UTF-8) or a Uint8Array, copied: the core thread owns its
// copy, and the caller may reuse its buffer as soon as the call returns.
std::string bytesOf(const Napi::Value& value, const char* what) {
  if (value.IsString()) return value.As<Napi::String>().Utf8Value();
  if (value.IsTypedArray() && value.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    const auto bytes = value.As<Napi::Uint8Array>();
    return std::string(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
  }
  throw makeError(value.Env(), "DELTACAST_INVALID_ARGUMENT", std::string(what) + " must be a string or a Uint8Array");
}

std::string stringOr(const Napi::Value& value, std::string fallback = {}) {
  return value.IsString() ? value.As<Napi::String>().Utf8Value() : std::move(fallback);
}

// A lane passed by lib/hub.js as 0 (none: the topic's), 1 critical, 2 high, 3 normal, 4 low.
std::optional<deltacast::Lane> laneArgument(const Napi::Value& value) {
  if (!value.IsNumber()) return std::nullopt;
  const std::uint32_t lane = value.As<Napi::Number>().Uint32Value();
  if (lane < 1 || lane > 4) return std::nullopt;
  return static_cast<deltacast::Lane>(lane - 1);
}

std::uint64_t uintField(const rapidjson::Value& object, const char* name, std::uint64_t fallback) {
  const auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : fallback;
}

// Options arrive as one JSON text, already validated by lib/hub.js.
deltacast::HubOptions parseOptions(Napi::Env env, const std::string& json) {
  rapidjson::Document doc;
  if (const deltacast::Status s = deltacast::parseDocument(json, doc); !s || !doc.IsObject()) {
    throw makeError(env, "DELTACAST_INVALID_ARGUMENT", "hub options must be a JSON object");
  }
  deltacast::HubOptions options;
  const auto clock = doc.FindMember("clock");
  options.manualClock =
      clock != doc.MemberEnd() && clock->value.IsString() && std::string(clock->value.GetString()) == "manual";
  options.sweepIntervalMs = static_cast<std::int64_t>(uintField(doc, "sweepIntervalMs", 1000));
  deltacast::StoreOptions& store = options.store;
  const auto key = doc.FindMember("arrayKey");
  if (key != doc.MemberEnd() && key->value.IsString()) store.arrayKey = key->value.GetString();
  if (key != doc.MemberEnd() && key->value.IsFalse()) store.arrayKey.clear();
  store.limits.maxBytes = uintField(doc, "maxValueBytes", store.limits.maxBytes);
  store.limits.maxDepth = static_cast<std::uint32_t>(uintField(doc, "maxDepth", store.limits.maxDepth));
  store.maxTopicLength = uintField(doc, "maxTopicLength", store.maxTopicLength);
  store.memoryBudget = uintField(doc, "memoryBytes", store.memoryBudget);
  store.historyCount = uintField(doc, "historyCount", store.historyCount);
  store.historyBytes = uintField(doc, "historyBytes", store.historyBytes);
  store.dedupCount = uintField(doc, "dedupCount", store.dedupCount);
  store.dedupWindowMs = static_cast<std::int64_t>(uintField(doc, "dedupWindowMs", store.dedupWindowMs));
  options.delivery.maxSubscriptions = uintField(doc, "maxSubscriptions", options.delivery.maxSubscriptions);
  options.delivery.maxMessageBytes = uintField(doc, "maxMessageBytes", options.delivery.maxMessageBytes);
  options.delivery.messagesPerSecond = static_cast<double>(uintField(doc, "messagesPerSecond", 100));
  options.delivery.messageBurst = static_cast<double>(uintField(doc, "messageBurst", 1000));
  options.delivery.rateViolations = uintField(doc, "rateViolations", options.delivery.rateViolations);
  options.delivery.heartbeatIntervalMs = static_cast<std::int64_t>(uintField(doc, "heartbeatIntervalMs", 25000));
  options.delivery.heartbeatTimeoutMs = static_cast<std::int64_t>(uintField(doc, "heartbeatTimeoutMs", 60000));
  options.delivery.creditFrames = uintField(doc, "creditFrames", options.delivery.creditFrames);
  options.delivery.creditBytes = uintField(doc, "creditBytes", options.delivery.creditBytes);
  options.delivery.stallTimeoutMs = static_cast<std::int64_t>(uintField(doc, "stallTimeoutMs", 30000));
  options.delivery.maxTopicLength = store.maxTopicLength;
  const auto access = doc.FindMember("access");
  if (access != doc.MemberEnd() && access->value.IsArray()) {
    for (const auto& rule : access->value.GetArray()) {
      if (!rule.IsObject() || !rule.HasMember("pattern") || !rule["pattern"].IsString()) continue;
      deltacast::AccessRule parsed{rule["pattern"].GetString(), {}};
      if (rule.HasMember("roles") && rule["roles"].IsArray()) {
        for (const auto& role : rule["roles"].GetArray()) {
          if (role.IsString()) parsed.roles.emplace_back(role.GetString());
        }
      }
      options.access.push_back(std::move(parsed));
    }
  }
  const auto laneOf = [](std::string_view name) -> std::optional<deltacast::Lane> {
    if (name == "critical") return deltacast::Lane::Critical;
    if (name == "high") return deltacast::Lane::High;
    if (name == "normal") return deltacast::Lane::Normal;
    if (name == "low") return deltacast::Lane::Low;
    return std::nullopt;
  };
  const auto lanes = doc.FindMember("lanes");
  if (lanes != doc.MemberEnd() && lanes->value.IsArray()) {
    for (const auto& rule : lanes->value.GetArray()) {
      if (!rule.IsObject() || !rule.HasMember("pattern") || !rule["pattern"].IsString() || !rule.HasMember("lane") ||
          !rule["lane"].IsString()) {
        continue;
      }
      if (const auto lane = laneOf(rule["lane"].GetString()))
        options.lanes.push_back({rule["pattern"].GetString(), *lane});
    }
  }
  options.pacing.highWindowMs = static_cast<std::int64_t>(uintField(doc, "highWindowMs", 16));
  options.pacing.normalDebounceMs = static_cast<std::int64_t>(uintField(doc, "normalDebounceMs", 50));
  options.pacing.normalMaxWaitMs = static_cast<std::int64_t>(uintField(doc, "normalMaxWaitMs", 250));
  options.pacing.lowIntervalMs = static_cast<std::int64_t>(uintField(doc, "lowIntervalMs", 1000));
  const auto ttl = doc.FindMember("ttl");
  if (ttl != doc.MemberEnd() && ttl->value.IsArray()) {
    for (const auto& rule : ttl->value.GetArray()) {
      if (!rule.IsObject() || !rule.HasMember("pattern") || !rule["pattern"].IsString()) continue;
      store.ttl.push_back({rule["pattern"].GetString(), static_cast<std::int64_t>(uintField(rule, "ms", 0))});
    }
  }
  return options;
}

// A request answered by a completion: its id (chosen by JS) is the first argument.
deltacast::Request answeredRequest(const Napi::CallbackInfo& info, deltacast::RequestKind kind) {
  deltacast::Request request;
  request.id = info[0].As<Napi::Number>().Uint32Value();
  request.kind = kind;
  return request;
}

// A request about a connection: its id (chosen by JS) is the first argument.
deltacast::Request connectionRequest(const Napi::CallbackInfo& info, deltacast::RequestKind kind) {
  deltacast::Request request;
  request.kind = kind;
  request.connection = static_cast<deltacast::ConnectionId>(info[0].As<Napi::Number>().Int64Value());
  return request;
}

}  // namespace

Napi::Function NativeHub::Init(Napi::Env env) {
  return DefineClass(env, "NativeHub",
                     {
                         InstanceMethod("publishJson", &NativeHub::PublishJson),
                         InstanceMethod("patch", &NativeHub::Patch),
                         InstanceMethod("upsert", &NativeHub::Upsert),
                         InstanceMethod("remove", &NativeHub::Remove),
                         InstanceMethod("delete", &NativeHub::Delete),
                         InstanceMethod("advance", &NativeHub::Advance),
                         InstanceMethod("close", &NativeHub::Close),
                         InstanceMethod("take", &NativeHub::Take),
                         InstanceMethod("connect", &NativeHub::Connect),
                         InstanceMethod("disconnect", &NativeHub::Disconnect),
                         InstanceMethod("receive", &NativeHub::Receive),
                         InstanceMethod("congestion", &NativeHub::Congestion),
                         InstanceMethod("get", &NativeHub::Get),
                         InstanceMethod("stats", &NativeHub::Stats),
                         InstanceMethod("ref", &NativeHub::Ref),
                         InstanceMethod("unref", &NativeHub::Unref),
                         InstanceMethod("dispose", &NativeHub::Dispose),
                     });
}

// new NativeHub(optionsJson, notify)
NativeHub::NativeHub(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeHub>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsFunction()) {
    throw makeError(env, "DELTACAST_INVALID_ARGUMENT", "NativeHub(optionsJson, notify)");
  }
  deltacast::HubOptions options = parseOptions(env, info[0].As<Napi::String>().Utf8Value());
  notify_ = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "deltacast hub", 0, 1);
  notify_.Unref(env);  // idle: JS refs it while requests are pending
  Napi::ThreadSafeFunction notify = notify_;
  core_ = std::make_unique<deltacast::HubCore>(std::move(options), [notify]() mutable {
    // Core thread. napi_closing after release is fine: nobody is listening.
    notify.NonBlockingCall();
  });
  napi_add_env_cleanup_hook(env_, &NativeHub::cleanupHook, this);
  cleanupHookAdded_ = true;
}

NativeHub::~NativeHub() { dispose(); }

void NativeHub::cleanupHook(void* self) { static_cast<NativeHub*>(self)->dispose(); }

void NativeHub::dispose() {
  if (disposed_) return;
  disposed_ = true;
  core_->stop();
  notify_.Release();
  if (cleanupHookAdded_) {
    napi_remove_env_cleanup_hook(env_, &NativeHub::cleanupHook, this);
    cleanupHookAdded_ = false;
  }
}

Napi::Value NativeHub::submit(const Napi::CallbackInfo& info, deltacast::Request request) {
  if (disposed_) throw makeError(info.Env(), "DELTACAST_CLOSED", "the hub is closed");
  core_->submit(std::move(request));
  return info.Env().Undefined();
}

// publishJson(id, topic, json, changeId?, lane?)
Napi::Value NativeHub::PublishJson(const Napi::CallbackInfo& info) {
  deltacast::Request request = answeredRequest(info, deltacast::RequestKind::PublishJson);
  request.topic = stringOr(info[1]);
  request.payload = bytesOf(info[2], "the JSON value");
  request.changeId = stringOr(info[3]);
  request.lane = laneArgument(info[4]);
  return submit(info, std::move(request));
}

// patch(id, topic, opsJson, changeId?, lane?)
Napi::Value NativeHub::Patch(const Napi::CallbackInfo& info) {
  deltacast::Request request = answeredRequest(info, deltacast::RequestKind::Patch);
  request.topic = stringOr(info[1]);
  request.payload = bytesOf(info[2], "the patch");
  request.changeId = stringOr(info[3]);
  request.lane = laneArgument(info[4]);
  return submit(info, std::move(request));
}

// upsert(id, topic, keyJson, rowJson, changeId?, lane?)
Napi::Value NativeHub::Upsert(const Napi::CallbackInfo& info) {
  deltacast::Request request = answeredRequest(info, deltacast::RequestKind::Upsert);
  request.topic = stringOr(info[1]);
  request.key = stringOr(info[2]);
  request.payload = bytesOf(info[3], "the row");
  request.changeId = stringOr(info[4]);
  request.lane = laneArgument(info[5]);
  return submit(info, std::move(request));
}

// remove(id, topic, keyJson, changeId?, lane?)
Napi::Value NativeHub::Remove(const Napi::CallbackInfo& info) {
  deltacast::Request request = answeredRequest(info, deltacast::RequestKind::Remove);
  request.topic = stringOr(info[1]);
  request.key = stringOr(info[2]);
  request.changeId = stringOr(info[3]);
  request.lane = laneArgument(info[4]);
  return submit(info, std::move(request));
}

// delete(id, topic)
Napi::Value NativeHub::Delete(const Napi::CallbackInfo& info) {
  deltacast::Request request = answeredRequest(info, deltacast::RequestKind::Delete);
  request.topic = stringOr(info[1]);
  return submit(info, std::move(request));
}

// advance(id, ms)
Napi::Value NativeHub::Advance(const Napi::CallbackInfo& info) {
  deltacast::Request request = answeredRequest(info, deltacast::RequestKind::Advance);
  request.ms = info[1].As<Napi::Number>().Int64Value();
  return submit(info, std::move(request));
}

// close(id): answered once every earlier request has run; then dispose().
Napi::Value NativeHub::Close(const Napi::CallbackInfo& info) {
  deltacast::Request request = answeredRequest(info, deltacast::RequestKind::Close);
  return submit(info, std::move(request));
}

// take() -> [completions, frames, sends, closings]
//   completions: five slots each: id, code ('' when ok), flags (1 changed,
//     2 duplicate, 4 found), version, epoch or message
//   frames: each distinct frame once, as a string
//   sends: two slots each: connection id, index into frames
//   closings: three slots each: connection id, close code, reason
// A frame shared by many connections crosses once and becomes one JS string.
Napi::Value NativeHub::Take(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array result = Napi::Array::New(env, 4);
  if (disposed_) {
    for (std::uint32_t i = 0; i < 4; ++i) result.Set(i, Napi::Array::New(env, 0));
    return result;
  }
  deltacast::HubCore::Batch batch = core_->take();
  Napi::Array completions = Napi::Array::New(env, batch.completions.size() * 5);
  std::uint32_t slot = 0;
  for (const deltacast::Completion& c : batch.completions) {
    const bool ok = c.code == deltacast::ErrorCode::Ok;
    completions.Set(slot++, Napi::Number::New(env, c.id));
    completions.Set(slot++, Napi::String::New(env, ok ? "" : deltacast::errorCodeName(c.code)));
    completions.Set(slot++, Napi::Number::New(env, (c.changed ? 1 : 0) | (c.duplicate ? 2 : 0) | (c.found ? 4 : 0)));
    completions.Set(slot++, Napi::Number::New(env, static_cast<double>(c.version)));
    completions.Set(slot++, Napi::String::New(env, ok ? c.epoch : c.message));
  }
  Napi::Array frames = Napi::Array::New(env);
  Napi::Array sends = Napi::Array::New(env, batch.frames.size() * 2);
  std::unordered_map<const std::string*, std::uint32_t> index;
  slot = 0;
  for (const deltacast::Outgoing& out : batch.frames) {
    auto [it, added] = index.try_emplace(out.frame.get(), static_cast<std::uint32_t>(index.size()));
    if (added) frames.Set(it->second, Napi::String::New(env, *out.frame));
    sends.Set(slot++, Napi::Number::New(env, static_cast<double>(out.connection)));
    sends.Set(slot++, Napi::Number::New(env, it->second));
  }
  Napi::Array closings = Napi::Array::New(env, batch.closings.size() * 3);
  slot = 0;
  for (const deltacast::Closing& c : batch.closings) {
    closings.Set(slot++, Napi::Number::New(env, static_cast<double>(c.connection)));
    closings.Set(slot++, Napi::Number::New(env, c.code));
    closings.Set(slot++, Napi::String::New(env, c.reason));
  }
  result.Set(0u, completions);
  result.Set(1u, frames);
  result.Set(2u, sends);
  result.Set(3u, closings);
  return result;
}

// connect(connectionId, userId, roles[])
Napi::Value NativeHub::Connect(const Napi::CallbackInfo& info) {
  deltacast::Request request = connectionRequest(info, deltacast::RequestKind::Connect);
  request.principal.id = stringOr(info[1]);
  if (info[2].IsArray()) {
    const Napi::Array roles = info[2].As<Napi::Array>();
    for (std::uint32_t i = 0; i < roles.Length(); ++i) request.principal.roles.push_back(stringOr(roles.Get(i)));
  }
  return submit(info, std::move(request));
}

// disconnect(connectionId)
Napi::Value NativeHub::Disconnect(const Napi::CallbackInfo& info) {
  deltacast::Request request = connectionRequest(info, deltacast::RequestKind::Disconnect);
  return submit(info, std::move(request));
}

// receive(connectionId, message): one client message, string or bytes
Napi::Value NativeHub::Receive(const Napi::CallbackInfo& info) {
  deltacast::Request request = connectionRequest(info, deltacast::RequestKind::Receive);
  request.payload = bytesOf(info[1], "a client message");
  return submit(info, std::move(request));
}

// congestion(connectionId, congested: boolean)
Napi::Value NativeHub::Congestion(const Napi::CallbackInfo& info) {
  deltacast::Request request = connectionRequest(info, deltacast::RequestKind::Congestion);
  request.ms = info[1].ToBoolean().Value() ? 1 : 0;
  return submit(info, std::move(request));
}

// get(topic) -> undefined | [json, version, epoch]
Napi::Value NativeHub::Get(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) return env.Undefined();
  const auto snapshot = core_->get(stringOr(info[0]));
  if (!snapshot) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::String::New(env, snapshot->json));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(snapshot->version)));
  out.Set(2u, Napi::String::New(env, snapshot->epoch));
  return out;
}

Napi::Value NativeHub::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const deltacast::StoreStats s = core_->stats();
  Napi::Object out = Napi::Object::New(env);
  auto set = [&](const char* name, std::uint64_t value) {
    out.Set(name, Napi::Number::New(env, static_cast<double>(value)));
  };
  set("topics", s.topics);
  set("bytes", s.bytes);
  set("memoryBudget", s.memoryBudget);
  set("changes", s.changes);
  set("unchanged", s.unchanged);
  set("duplicates", s.duplicates);
  set("rejected", s.rejected);
  set("evictions", s.evictions);
  set("expirations", s.expirations);
  set("historyBytes", s.historyBytes);
  const deltacast::DeliveryStats& d = core_->deliveryStats();
  auto load = [](const std::atomic<std::uint64_t>& value) { return value.load(std::memory_order_relaxed); };
  set("connections", load(d.connections));
  set("subscriptions", load(d.subscriptions));
  set("framesSent", load(d.framesSent));
  set("bytesSent", load(d.bytesSent));
  set("bytesSaved", load(d.bytesSaved));
  set("conflated", load(d.conflated));
  set("closedSlow", load(d.closedSlow));
  set("closedSilent", load(d.closedSilent));
  set("closedFlooding", load(d.closedFlooding));
  set("snapshotFramesBuilt", load(d.snapshotFramesBuilt));
  set("snapshotFramesReused", load(d.snapshotFramesReused));
  // latency: { critical: { boundsMs, counts, count, sumMs }, high: ..., normal: ..., low: ... }
  Napi::Object latency = Napi::Object::New(env);
  static const char* const kLanes[] = {"critical", "high", "normal", "low"};
  for (std::size_t lane = 0; lane < 4; ++lane) {
    const deltacast::LatencyHistogram& h = d.latency[lane];
    Napi::Object entry = Napi::Object::New(env);
    Napi::Array bounds = Napi::Array::New(env, h.kBoundsMs.size());
    for (std::uint32_t i = 0; i < h.kBoundsMs.size(); ++i)
      bounds.Set(i, Napi::Number::New(env, static_cast<double>(h.kBoundsMs[i])));
    Napi::Array counts = Napi::Array::New(env, h.counts.size());
    for (std::uint32_t i = 0; i < h.counts.size(); ++i)
      counts.Set(i, Napi::Number::New(env, static_cast<double>(load(h.counts[i]))));
    entry.Set("boundsMs", bounds);
    entry.Set("counts", counts);
    entry.Set("count", Napi::Number::New(env, static_cast<double>(load(h.count))));
    entry.Set("sumMs", Napi::Number::New(env, static_cast<double>(load(h.sumMs))));
    latency.Set(kLanes[lane], entry);
  }
  out.Set("latency", latency);
  return out;
}

Napi::Value NativeHub::Ref(const Napi::CallbackInfo& info) {
  if (!disposed_) notify_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value NativeHub::Unref(const Napi::CallbackInfo& info) {
  if (!disposed_) notify_.Unref(info.Env());
  return info.Env().Undefined();
}

Napi::Value NativeHub::Dispose(const Napi::CallbackInfo& info) {
  dispose();
  return info.Env().Undefined();
}

}  // namespace deltacast_binding
