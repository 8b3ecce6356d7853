#include "deltacast/frames.h"

#include "deltacast/json_tape.h"

namespace deltacast::frames {

namespace {

void appendQuoted(std::string_view s, std::string& out) {
  out.push_back('"');
  appendJsonEscaped(s, out);
  out.push_back('"');
}

// {"t":"patch","topic":…,"epoch":…,"from":…,"to":…,"ops":
std::string patchHead(std::string_view topic, std::string_view epoch, std::uint64_t from, std::uint64_t to) {
  std::string frame = "{\"t\":\"patch\",\"topic\":";
  appendQuoted(topic, frame);
  frame.append(",\"epoch\":");
  appendQuoted(epoch, frame);
  frame.append(",\"from\":" + std::to_string(from) + ",\"to\":" + std::to_string(to) + ",\"ops\":");
  return frame;
}

// ,"ids":[…] and/or ,"idsTruncated":true, then the closing brace.
void appendIdsAndClose(const PatchIds& ids, std::string& frame) {
  if (!ids.ids.empty()) {
    frame.append(",\"ids\":[");
    for (std::size_t i = 0; i < ids.ids.size(); ++i) {
      if (i > 0) frame.push_back(',');
      appendQuoted(ids.ids[i], frame);
    }
    frame.push_back(']');
  }
  if (ids.truncated) frame.append(",\"idsTruncated\":true");
  frame.push_back('}');
}

constexpr std::string_view kBatchOpen = "{\"t\":\"batch\",\"items\":[";
constexpr std::string_view kBatchClose = "]}";

}  // namespace

Frame snapshot(std::string_view topic, std::string_view epoch, std::uint64_t version, std::string_view json) {
  std::string frame;
  frame.reserve(json.size() + topic.size() + epoch.size() + 64);
  frame.append("{\"t\":\"snap\",\"topic\":");
  appendQuoted(topic, frame);
  frame.append(",\"epoch\":");
  appendQuoted(epoch, frame);
  frame.append(",\"version\":");
  frame.append(std::to_string(version));
  frame.append(",\"data\":");
  frame.append(json);
  frame.push_back('}');
  return std::make_shared<const std::string>(std::move(frame));
}

Frame patch(std::string_view topic, std::string_view epoch, std::uint64_t from, std::uint64_t to, std::string_view ops,
            const PatchIds& ids) {
  std::string frame = patchHead(topic, epoch, from, to);
  frame.append(ops);
  appendIdsAndClose(ids, frame);
  return std::make_shared<const std::string>(std::move(frame));
}

Frame patchOfSteps(std::string_view topic, std::string_view epoch, std::uint64_t from, std::uint64_t to,
                   const std::vector<std::string_view>& steps, const PatchIds& ids) {
  std::string frame = patchHead(topic, epoch, from, to);
  frame.push_back('[');
  bool first = true;
  for (const std::string_view step : steps) {
    const std::string_view inner = step.size() >= 2 ? step.substr(1, step.size() - 2) : std::string_view();
    if (inner.empty()) continue;
    if (!first) frame.push_back(',');
    first = false;
    frame.append(inner);
  }
  frame.push_back(']');
  appendIdsAndClose(ids, frame);
  return std::make_shared<const std::string>(std::move(frame));
}

Frame gone(std::string_view topic, std::string_view epoch, std::uint64_t version, std::string_view reason) {
  std::string text = "{\"t\":\"gone\",\"topic\":";
  appendQuoted(topic, text);
  text.append(",\"epoch\":");
  appendQuoted(epoch, text);
  text.append(",\"version\":" + std::to_string(version) + ",\"reason\":");
  appendQuoted(reason, text);
  text.push_back('}');
  return std::make_shared<const std::string>(std::move(text));
}

Frame error(std::string_view code, std::string_view message, std::string_view topic) {
  std::string frame = "{\"t\":\"err\",\"code\":";
  appendQuoted(code, frame);
  frame.append(",\"message\":");
  appendQuoted(message, frame);
  if (!topic.empty()) {
    frame.append(",\"topic\":");
    appendQuoted(topic, frame);
  }
  frame.push_back('}');
  return std::make_shared<const std::string>(std::move(frame));
}

const Frame& ping() {
  static const Frame frame = std::make_shared<const std::string>("{\"t\":\"ping\"}");
  return frame;
}

bool isSnapshot(const Frame& frame) { return frame->compare(0, 10, "{\"t\":\"snap") == 0; }

std::vector<Frame> batches(std::vector<Frame> items, std::size_t maxBytes) {
  std::vector<Frame> out;
  std::vector<Frame> current;
  std::size_t bytes = 0;
  const auto ship = [&]() {
    if (current.size() == 1) {
      out.push_back(std::move(current.front()));
    } else if (current.size() > 1) {
      std::string batch;
      batch.reserve(bytes);
      batch.append(kBatchOpen);
      for (std::size_t i = 0; i < current.size(); ++i) {
        if (i > 0) batch.push_back(',');
        batch.append(*current[i]);
      }
      batch.append(kBatchClose);
      out.push_back(std::make_shared<const std::string>(std::move(batch)));
    }
    current.clear();
    bytes = 0;
  };
  for (Frame& frame : items) {
    if (!current.empty() && bytes + 1 + frame->size() > maxBytes) ship();
    bytes += frame->size() + (current.empty() ? kBatchOpen.size() + kBatchClose.size() : 1);
    current.push_back(std::move(frame));
  }
  ship();
  return out;
}

}  // namespace deltacast::frames
