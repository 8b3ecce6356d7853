#include "hub.h"

#include <cstring>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "deltacast/background_free.h"
#include "deltacast/json_patch.h"

namespace deltacast_binding {

namespace {

Napi::Error makeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

// The first argument as a Uint8Array, or DELTACAST_INVALID_ARGUMENT naming the call.
Napi::Uint8Array uint8ArrayArgument(const Napi::CallbackInfo& info, const char* call) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw makeError(info.Env(), "DELTACAST_INVALID_ARGUMENT", call);
  }
  return info[0].As<Napi::Uint8Array>();
}

std::string stringOr(const Napi::Value& value, std::string fallback = {}) {
  return value.IsString() ? value.As<Napi::String>().Utf8Value() : std::move(fallback);
}

// The options document is made by lib/options.js, which fills in every
// default and checks every bound; nothing here decides a value. A field that
// is missing or of the wrong type is a bug in lib/, reported as
// DELTACAST_INTERNAL naming it, never replaced by a default.
class OptionsReader {
 public:
  explicit OptionsReader(Napi::Env env) : env_(env) {}

  const rapidjson::Value& member(const rapidjson::Value& object, const char* name) const {
    const auto it = object.FindMember(name);
    if (it == object.MemberEnd()) fail(name, "missing");
    return it->value;
  }
  const rapidjson::Value& section(const rapidjson::Value& object, const char* name) const {
    const rapidjson::Value& value = member(object, name);
    if (!value.IsObject()) fail(name, "not an object");
    return value;
  }
  const rapidjson::Value& array(const rapidjson::Value& object, const char* name) const {
    const rapidjson::Value& value = member(object, name);
    if (!value.IsArray()) fail(name, "not an array");
    return value;
  }
  std::uint64_t count(const rapidjson::Value& object, const char* name) const {
    const rapidjson::Value& value = member(object, name);
    if (!value.IsUint64()) fail(name, "not a non-negative integer");
    return value.GetUint64();
  }
  // Time options: lib/options.js bounds them by MAX_TIME_MS (2^31 - 1 ms).
  std::int64_t ms(const rapidjson::Value& object, const char* name) const {
    const std::uint64_t value = count(object, name);
    if (value > kMaxTimeMs) fail(name, "above 2^31 - 1 ms");
    return static_cast<std::int64_t>(value);
  }
  std::string string(const rapidjson::Value& object, const char* name) const {
    const rapidjson::Value& value = member(object, name);
    if (!value.IsString()) fail(name, "not a string");
    return {value.GetString(), value.GetStringLength()};
  }

  [[noreturn]] void fail(const char* name, const char* what) const {
    throw makeError(env_, "DELTACAST_INTERNAL", std::string("hub options: ") + name + " is " + what);
  }

  static constexpr std::uint64_t kMaxTimeMs = 0x7fffffff;

 private:
  Napi::Env env_;
};

// Options arrive as one JSON text: lib/options.js's normalizeOptions result.
deltacast::HubOptions parseOptions(Napi::Env env, const std::string& json) {
  rapidjson::Document doc;
  if (const deltacast::Status s = deltacast::parseDocument(json, doc); !s || !doc.IsObject()) {
    throw makeError(env, "DELTACAST_INTERNAL", "hub options must be a JSON object");
  }
  const OptionsReader read(env);
  deltacast::HubOptions options;
  const std::string clock = read.string(doc, "clock");
  if (clock != "real" && clock != "manual") read.fail("clock", "neither 'real' nor 'manual'");
  options.manualClock = clock == "manual";
  // true when the hub has an onAudit hook (lib/hub.js adds it; absent: false)
  if (const auto audit = doc.FindMember("audit"); audit != doc.MemberEnd()) {
    if (!audit->value.IsBool()) read.fail("audit", "not a boolean");
    options.audit = audit->value.GetBool();
  }
  options.sweepIntervalMs = read.ms(doc, "sweepIntervalMs");

  deltacast::StoreOptions& store = options.store;
  const rapidjson::Value& arrayKey = read.member(doc, "arrayKey");
  if (arrayKey.IsString() && arrayKey.GetStringLength() > 0)
    store.arrayKey.assign(arrayKey.GetString(), arrayKey.GetStringLength());
  else if (arrayKey.IsFalse())
    store.arrayKey.clear();
  else
    read.fail("arrayKey", "neither a non-empty string nor false");

  const rapidjson::Value& limits = read.section(doc, "limits");
  store.limits.maxBytes = read.count(limits, "maxValueBytes");
  store.limits.maxDepth = static_cast<std::uint32_t>(read.count(limits, "maxDepth"));
  store.maxTopicLength = read.count(limits, "maxTopicLength");
  store.maxPatchOps = read.count(limits, "maxPatchOps");
  options.delivery.maxTopicLength = store.maxTopicLength;
  options.delivery.maxSubscriptions = read.count(limits, "maxSubscriptions");
  options.delivery.maxMessageBytes = read.count(limits, "maxMessageBytes");
  options.delivery.messagesPerSecond = static_cast<double>(read.count(limits, "messagesPerSecond"));
  options.delivery.messageBurst = static_cast<double>(read.count(limits, "messageBurst"));
  options.delivery.rateViolations = read.count(limits, "rateViolations");

  store.memoryBudget = read.count(read.section(doc, "memory"), "maxBytes");
  const rapidjson::Value& history = read.section(doc, "history");
  store.historyCount = read.count(history, "maxCount");
  store.historyBytes = read.count(history, "maxBytes");
  const rapidjson::Value& dedup = read.section(doc, "dedup");
  store.dedupCount = read.count(dedup, "maxCount");
  store.dedupWindowMs = read.ms(dedup, "windowMs");

  const rapidjson::Value& heartbeat = read.section(doc, "heartbeat");
  options.delivery.heartbeatIntervalMs = read.ms(heartbeat, "intervalMs");
  options.delivery.heartbeatTimeoutMs = read.ms(heartbeat, "timeoutMs");
  const rapidjson::Value& credit = read.section(doc, "credit");
  options.delivery.creditFrames = read.count(credit, "maxFrames");
  options.delivery.creditBytes = read.count(credit, "maxBytes");
  options.delivery.stallTimeoutMs = read.ms(credit, "stallTimeoutMs");
  const rapidjson::Value& pacing = read.section(doc, "pacing");
  options.pacing.highWindowMs = read.ms(pacing, "highWindowMs");
  options.pacing.normalDebounceMs = read.ms(pacing, "normalDebounceMs");
  options.pacing.normalMaxWaitMs = read.ms(pacing, "normalMaxWaitMs");
  options.pacing.lowIntervalMs = read.ms(pacing, "lowIntervalMs");

  for (const auto& rule : read.array(doc, "permissions").GetArray()) {
    if (!rule.IsObject()) read.fail("permissions", "not an array of rules");
    deltacast::AccessRule parsed{read.string(rule, "pattern"), {}};
    for (const auto& role : read.array(rule, "roles").GetArray()) {
      if (!role.IsString()) read.fail("permissions[].roles", "not an array of strings");
      parsed.roles.emplace_back(role.GetString(), role.GetStringLength());
    }
    options.access.push_back(std::move(parsed));
  }
  for (const auto& rule : read.array(doc, "lanes").GetArray()) {
    if (!rule.IsObject()) read.fail("lanes", "not an array of rules");
    const std::string lane = read.string(rule, "lane");
    deltacast::Lane parsed = deltacast::Lane::Normal;
    if (lane == "critical")
      parsed = deltacast::Lane::Critical;
    else if (lane == "high")
      parsed = deltacast::Lane::High;
    else if (lane == "low")
      parsed = deltacast::Lane::Low;
    else if (lane != "normal")
      read.fail("lanes[].lane", "not a lane name");
    options.lanes.push_back({read.string(rule, "pattern"), parsed});
  }
  for (const auto& rule : read.array(doc, "ttl").GetArray()) {
    if (!rule.IsObject()) read.fail("ttl", "not an array of rules");
    store.ttl.push_back({read.string(rule, "pattern"), read.ms(rule, "ms")});
  }
  return options;
}

}  // namespace

Napi::Function NativeHub::Init(Napi::Env env) {
  return DefineClass(env, "NativeHub",
                     {
                         InstanceMethod("stage", &NativeHub::Stage),
                         InstanceMethod("submit", &NativeHub::Submit),
                         InstanceMethod("take", &NativeHub::Take),
                         InstanceMethod("get", &NativeHub::Get),
                         InstanceMethod("stats", &NativeHub::Stats),
                         InstanceMethod("evictions", &NativeHub::Evictions),
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

NativeHub::~NativeHub() {
  dispose();
  // V8 finalizes a collected NativeHub on the JS thread: the core's memory
  // (its store, histories and delivery state) is freed on a thread of its
  // own instead (deltacast/background_free.h), not in the event loop.
  deltacast::BackgroundFree::shared().free(std::move(core_));
}

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

// stage(bytes: Uint8Array) -> index: a large payload, copied now, for a
// record of the next submit() to name (request.h: staged payloads). Its bytes
// are copied once, here, and move to the core without another copy.
Napi::Value NativeHub::Stage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) throw makeError(env, "DELTACAST_CLOSED", "the hub is closed");
  const Napi::Uint8Array bytes = uint8ArrayArgument(info, "stage(bytes: Uint8Array)");
  staged_.emplace_back(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
  return Napi::Number::New(env, static_cast<double>(staged_.size() - 1));
}

// submit(records: Uint8Array): requests in their wire form (deltacast/request.h),
// copied once and decoded on the core thread, with the payloads staged since
// the last submit. A malformed buffer (a bug in lib/hub.js) throws and nothing
// of it runs.
Napi::Value NativeHub::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> staged;
  staged.swap(staged_);  // whatever happens, the next batch starts empty
  if (disposed_) throw makeError(env, "DELTACAST_CLOSED", "the hub is closed");
  const Napi::Uint8Array bytes = uint8ArrayArgument(info, "submit(records: Uint8Array)");
  std::string records(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
  std::size_t count = 0;
  std::vector<std::uint32_t> answeredIds;
  if (const deltacast::Status s = deltacast::validateRequests(records, staged.size(), count, &answeredIds); !s) {
    throw makeError(env, "DELTACAST_INTERNAL", s.message());
  }
  core_->submitEncoded(std::move(records), std::move(staged), std::move(answeredIds));
  return env.Undefined();
}

namespace {

// An epoch of 1 to 13 lowercase hex digits (what the store makes: 12) as the
// number they spell, which a double holds exactly; JS turns it back into the
// string only when a caller reads the answer.
std::optional<double> packEpoch(std::string_view epoch) {
  if (epoch.empty() || epoch.size() > 13 || epoch[0] == '0') return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : epoch) {
    int digit = 0;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else
      return std::nullopt;
    value = value << 4 | static_cast<std::uint64_t>(digit);
  }
  return static_cast<double>(value);
}

Napi::Float64Array float64s(Napi::Env env, const std::vector<double>& values) {
  Napi::Float64Array out = Napi::Float64Array::New(env, values.size());
  if (!values.empty()) std::memcpy(out.Data(), values.data(), values.size() * sizeof(double));
  return out;
}

}  // namespace

// take() -> [answers, strings, frames, sends, closings, audits, auths, wants, dueWants]
//   answers: Float64Array, five slots each: id, flags (1 changed, 2 duplicate,
//     4 found), version, code (index into strings, -1 when ok), and the epoch
//     or the error message: n >= 0 is an epoch packed as a number (its hex
//     digits, no leading zero), n < 0 is index -1 - n into strings
//   strings: each distinct epoch, code and message once
//   frames: each distinct frame once, as a string
//   sends: Float64Array, two slots each: connection id, index into frames
//   closings: three slots each: connection id, close code, reason
//   audits: seven slots each: type, connection id, user id, transport, topic
//     (undefined: none), code (a DELTACAST_* string, or the close code as a
//     number, or undefined), time (the hub's clock)
//   auths: two slots each: connection id, token (to verify, then Reauth)
//   wants: Float64Array, the held values a flush asks for (coalescing), each
//     by the heldId of its topic's latest Hold; dueWants: the same for values
//     that must come now (removed while held, or found due by a Redate):
//     answered with the value at once, Delivery::takeDueWants
// A frame shared by many connections crosses once and becomes one JS string;
// an epoch shared by many answers likewise.
Napi::Value NativeHub::Take(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array result = Napi::Array::New(env, 9);
  deltacast::HubCore::Batch batch;
  if (!disposed_) batch = core_->take();

  Napi::Array strings = Napi::Array::New(env);
  std::unordered_map<std::string_view, double> stringIndex;
  const auto intern = [&](std::string_view text) {
    auto [it, added] = stringIndex.try_emplace(text, static_cast<double>(stringIndex.size()));
    if (added) strings.Set(static_cast<std::uint32_t>(it->second), Napi::String::New(env, text.data(), text.size()));
    return it->second;
  };
  std::vector<double> answers;
  answers.reserve(batch.completions.size() * 5);
  for (const deltacast::Completion& c : batch.completions) {
    const bool ok = c.code == deltacast::ErrorCode::Ok;
    answers.push_back(c.id);
    answers.push_back((c.changed ? 1 : 0) | (c.duplicate ? 2 : 0) | (c.found ? 4 : 0));
    answers.push_back(static_cast<double>(c.version));
    if (!ok) {
      answers.push_back(intern(deltacast::errorCodeName(c.code)));
      answers.push_back(-1 - intern(c.message));
      continue;
    }
    answers.push_back(-1);
    const auto packed = packEpoch(c.epoch);  // no string made unless somebody reads this answer
    answers.push_back(packed ? *packed : -1 - intern(c.epoch));
  }

  Napi::Array frames = Napi::Array::New(env);
  std::vector<double> sends;
  sends.reserve(batch.frames.size() * 2);
  Napi::Array closings = Napi::Array::New(env);
  std::uint32_t closingSlot = 0;
  const auto closing = [&](double connection, int code, const std::string& reason) {
    closings.Set(closingSlot++, Napi::Number::New(env, connection));
    closings.Set(closingSlot++, Napi::Number::New(env, code));
    closings.Set(closingSlot++, Napi::String::New(env, reason));
  };
  // The core bounds every frame by V8's longest string (DeliveryLimits::maxFrameBytes).
  std::unordered_map<const std::string*, double> frameIndex;
  for (const deltacast::Outgoing& out : batch.frames) {
    const double connection = static_cast<double>(out.connection);
    auto [it, added] = frameIndex.try_emplace(out.frame.get(), static_cast<double>(frameIndex.size()));
    if (added) frames.Set(static_cast<std::uint32_t>(it->second), Napi::String::New(env, *out.frame));
    sends.push_back(connection);
    sends.push_back(it->second);
  }
  for (const deltacast::Closing& c : batch.closings) closing(static_cast<double>(c.connection), c.code, c.reason);

  result.Set(0u, float64s(env, answers));
  result.Set(1u, strings);
  result.Set(2u, frames);
  result.Set(3u, float64s(env, sends));
  result.Set(4u, closings);
  Napi::Array audits = Napi::Array::New(env, batch.audits.size() * 7);
  std::uint32_t slot = 0;
  for (const deltacast::AuditEvent& e : batch.audits) {
    audits.Set(slot++, Napi::String::New(env, e.type));
    audits.Set(slot++, Napi::Number::New(env, static_cast<double>(e.connection)));
    audits.Set(slot++, Napi::String::New(env, e.user));
    audits.Set(slot++, Napi::String::New(env, e.transport));
    audits.Set(slot++, e.topic.empty() ? env.Undefined() : Napi::String::New(env, e.topic));
    if (e.code != nullptr) {
      audits.Set(slot++, Napi::String::New(env, e.code));
    } else if (e.closeCode != 0) {
      audits.Set(slot++, Napi::Number::New(env, e.closeCode));
    } else {
      audits.Set(slot++, env.Undefined());
    }
    audits.Set(slot++, Napi::Number::New(env, static_cast<double>(e.time)));
  }
  result.Set(5u, audits);
  Napi::Array auths = Napi::Array::New(env, batch.auths.size() * 2);
  slot = 0;
  for (const deltacast::AuthRequest& a : batch.auths) {
    auths.Set(slot++, Napi::Number::New(env, static_cast<double>(a.connection)));
    auths.Set(slot++, Napi::String::New(env, a.token));
  }
  result.Set(6u, auths);
  // Asks for held values, by the number JS gave each (no strings made).
  const auto heldIds = [&](const std::vector<deltacast::Delivery::Want>& asks) {
    std::vector<double> ids;
    ids.reserve(asks.size());
    for (const deltacast::Delivery::Want& want : asks) ids.push_back(static_cast<double>(want.heldId));
    return float64s(env, ids);
  };
  result.Set(7u, heldIds(batch.wants));
  result.Set(8u, heldIds(batch.dueWants));
  return result;
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

// evictions(): topics the memory budget evicted so far (stats().evictions,
// without building the stats object: lib/identity.js reads it per publish).
Napi::Value NativeHub::Evictions(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(core_->evictions()));
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
  set("squashed", load(d.squashed));
  set("goneSent", load(d.goneSent));
  set("internalErrors", core_->internalErrors());
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
