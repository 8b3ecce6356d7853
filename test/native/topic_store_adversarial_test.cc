// Edge cases of the topic store's in-place snapshot reuse (installText), its
// history ring (HistoryRing) and replicas, each checked against a simple
// model: a std::map of texts and versions, a second store that keeps no rows,
// and the history's patches applied to earlier snapshots.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "deltacast/json_diff.h"
#include "deltacast/json_patch.h"
#include "deltacast/json_tape.h"
#include "deltacast/topic_store.h"

namespace deltacast {
namespace {

bool sameJson(std::string_view a, std::string_view b) {
  JsonTape ta;
  JsonTape tb;
  if (!ta.parse(a, ParseLimits{}) || !tb.parse(b, ParseLimits{})) return false;
  return jsonEqual(ta, 0, tb, 0);
}

// ---- HistoryRing on its own, against a deque ---------------------------------

TEST(HistoryRingModel, PushPopShrinkAssignMatchADequeAcrossCompactionsAndGrowthBounds) {
  for (std::uint32_t seed = 1; seed <= 30; ++seed) {
    std::mt19937 random(seed);
    // Odd seeds: slot arrays from a pool (up to SlabPool::kMaxBlockBytes, 128
    // slots; larger ones from operator new), so a ring moves between both.
    SlabPool pool;
    SlabPool* const from = seed % 2 == 1 ? &pool : nullptr;
    HistoryRing ring;
    std::deque<HistoryEntry> model;
    std::uint64_t version = 1;
    for (int step = 0; step < 600; ++step) {
      const int action = static_cast<int>(random() % 10);
      if (action < 6) {
        // Lengths from 0 to a few hundred bytes: compaction at every boundary.
        // In the slot (up to HistoryRing::kInlineBytes) and in the buffer, mixed.
        const std::size_t length = random() % 7 == 0 ? random() % 400 : random() % 64;
        std::string ops(length, static_cast<char>('a' + random() % 26));
        // Any growth bound (even one below the size) still leaves room.
        const std::size_t maxSteps = random() % 3 == 0 ? SIZE_MAX : random() % 80;
        ring.push_back(version, version + 1, ops, maxSteps, from);
        model.push_back(HistoryEntry{version, version + 1, ops});
        ++version;
      } else if (action < 9) {
        if (!model.empty()) {
          ring.pop_front();
          model.pop_front();
        }
      } else if (random() % 2 == 0) {
        ring.shrink(from);  // gives back memory, keeps every step
      } else if (random() % 3 == 0) {
        HistoryRing moved(std::move(ring));  // the slots change hands, nothing is copied or lost
        ring = std::move(moved);
      } else if (random() % 4 == 0) {
        std::vector<HistoryEntry> entries(model.begin(), model.end());
        // Keep only the last few, as replicaHistory does.
        while (entries.size() > 5) entries.erase(entries.begin());
        ring.assign(entries, from);
        model.assign(entries.begin(), entries.end());
      }
      ASSERT_EQ(ring.size(), model.size()) << "seed " << seed << " step " << step;
      for (std::size_t i = 0; i < model.size(); ++i) {
        const HistoryStep s = ring[i];
        ASSERT_EQ(s.from, model[i].from) << "seed " << seed << " step " << step << " i " << i;
        ASSERT_EQ(s.to, model[i].to);
        ASSERT_EQ(s.ops, model[i].ops) << "seed " << seed << " step " << step << " i " << i;
      }
    }
  }
}

// ---- the store's history bounds ----------------------------------------------

TEST(TopicStoreHistoryEdges, CountZeroKeepsNoHistoryAndCountsNoBytes) {
  StoreOptions options;
  options.historyCount = 0;
  TopicStore store(options);
  for (int v = 1; v <= 20; ++v) {
    ASSERT_TRUE(store.publishJson("t", R"({"v":)" + std::to_string(v) + "}", "", 0).changed);
    EXPECT_TRUE(store.historySince("t", static_cast<std::uint64_t>(v) - 1).empty());
  }
  EXPECT_EQ(store.stats().historyBytes, 0u);
}

TEST(TopicStoreHistoryEdges, CountOneKeepsOnlyTheLastStep) {
  StoreOptions options;
  options.historyCount = 1;
  TopicStore store(options);
  std::string lastOps;
  for (int v = 1; v <= 40; ++v) {
    // Alternating long and short patches: compaction at every other step.
    const std::string value = v % 2 == 0 ? std::string(static_cast<std::size_t>(v) * 10, 'x') : "s";
    ChangeResult r = store.publishJson("t", R"({"v":")" + value + R"("})", "", 0);
    ASSERT_TRUE(r.changed);
    lastOps = r.ops;
    if (v == 1) continue;
    const auto steps = store.historySince("t", static_cast<std::uint64_t>(v) - 1);
    ASSERT_EQ(steps.size(), 1u) << v;
    EXPECT_EQ(steps[0].ops, lastOps);
    EXPECT_TRUE(store.historySince("t", static_cast<std::uint64_t>(v) - 2).empty());
    EXPECT_EQ(store.stats().historyBytes, lastOps.size());
  }
}

TEST(TopicStoreHistoryEdges, BytesBelowOnePatchKeepNothing) {
  StoreOptions options;
  options.historyBytes = 10;  // every patch is longer
  TopicStore store(options);
  for (int v = 1; v <= 10; ++v) ASSERT_TRUE(store.publishJson("t", std::to_string(v), "", 0).changed);
  EXPECT_TRUE(store.historySince("t", 9).empty());
  EXPECT_EQ(store.stats().historyBytes, 0u);
  // A patch of exactly the limit is kept.
  StoreOptions exact;
  const std::string ops = R"([{"op":"replace","path":"","value":2}])";
  exact.historyBytes = ops.size();
  TopicStore kept(exact);
  ASSERT_TRUE(kept.publishJson("t", "1", "", 0).changed);
  ChangeResult r = kept.publishJson("t", "2", "", 0);
  ASSERT_EQ(r.ops, ops);
  ASSERT_EQ(kept.historySince("t", 1).size(), 1u);
}

// The budget trims history first; the topic stays and the accounting adds up.
TEST(TopicStoreHistoryEdges, MemoryBudgetTrimsHistoryBeforeTheTopic) {
  StoreOptions options;
  options.memoryBudget = 3000;
  TopicStore store(options);
  for (int v = 1; v <= 200; ++v) {
    const std::string text = R"({"v":")" + std::string(static_cast<std::size_t>(v % 7) * 40, 'q') + "\"}";
    ChangeResult r = store.publishJson("t", text, "", 0);
    ASSERT_TRUE(r.status.isOk()) << r.status.message();
    ASSERT_NE(store.get("t"), nullptr);
    EXPECT_LE(store.stats().bytes, options.memoryBudget) << v;
    std::uint64_t sum = 0;
    const std::uint64_t current = store.get("t")->version;
    // Whatever history is left is a contiguous run ending at the current version.
    for (std::uint64_t from = 1; from < current; ++from) {
      const auto steps = store.historySince("t", from);
      if (steps.empty()) continue;
      EXPECT_EQ(steps.back().to, current);
      for (const HistoryStep& s : steps) sum += s.ops.size();
      break;
    }
    EXPECT_EQ(store.stats().historyBytes, sum) << v;
  }
}

// The budget counts a history as the memory its ring holds: 64-byte slots,
// though a tiny topic's patches are 40-odd bytes.
TEST(TopicStoreHistoryEdges, MemoryBudgetCountsTheRingsSlots) {
  TopicStore store(StoreOptions{});
  for (int v = 1; v <= 33; ++v) ASSERT_TRUE(store.publishJson("t", R"({"v":)" + std::to_string(v) + "}", "", 0).status);
  const StoreStats stats = store.stats();
  EXPECT_LE(stats.historyBytes, 32u * 48u);  // the patches themselves (about 41 bytes each)
  EXPECT_GE(stats.bytes, 32u * 64u);         // the ring's 32 slots
}

// Views stay valid (and right) across anything that is not a change of their topic.
TEST(TopicStoreHistoryEdges, ViewsSurviveUnchangedPublishesAndOtherTopics) {
  StoreOptions options;
  options.historyCount = 4;
  TopicStore store(options);
  for (int v = 1; v <= 9; ++v) ASSERT_TRUE(store.publishJson("t", R"({"v":)" + std::to_string(v) + "}", "", 0).changed);
  const auto steps = store.historySince("t", 6);
  ASSERT_EQ(steps.size(), 3u);
  std::vector<std::string> copies;
  for (const HistoryStep& s : steps) copies.emplace_back(s.ops);
  EXPECT_FALSE(store.publishJson("t", R"({"v":9})", "", 0).changed);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(store.publishJson("other" + std::to_string(i % 3), std::to_string(i), "", 0).changed);
  }
  (void)store.get("t");
  for (std::size_t i = 0; i < steps.size(); ++i) EXPECT_EQ(steps[i].ops, copies[i]);
}

// ---- replicas' history ---------------------------------------------------------

// An engine's history with more steps than the version has (a step "before
// version 1") must not leave a step in the ring that hides the real ones.
TEST(TopicStoreHistoryEdges, ReplicaHistoryLongerThanTheVersionDoesNotHideLaterSteps) {
  TopicStore store(StoreOptions{});
  store.replicate("t", "e1", 2, ReplicaMode::State, R"({"a":2})", 0);
  store.replicate("t", "e1", 2, ReplicaMode::History,
                  R"([[{"op":"add","path":"/a","value":0}],[{"op":"replace","path":"/a","value":1}],)"
                  R"([{"op":"replace","path":"/a","value":2}]])",
                  0);
  for (const std::uint64_t from : {0u, 1u}) {
    for (const HistoryStep& s : store.historySince("t", from)) {
      EXPECT_LE(s.from, s.to) << "a step from " << s.from << " to " << s.to;
    }
  }
  // An ordinary change after it: resuming from version 2 needs just that step.
  ChangeResult r = store.publishJson("t", R"({"a":3})", "", 0);
  ASSERT_EQ(r.version, 3u);
  const auto steps = store.historySince("t", 2);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].ops, r.ops);
}

// After a replica's history was assigned, more changes push, pop and compact
// as before.
TEST(TopicStoreHistoryEdges, ReplicaHistoryThenManyChanges) {
  StoreOptions options;
  options.historyCount = 3;
  TopicStore store(options);
  store.replicate("t", "e1", 3, ReplicaMode::State, R"({"a":3})", 0);
  store.replicate("t", "e1", 3, ReplicaMode::History,
                  R"([[{"op":"replace","path":"/a","value":2}],[{"op":"replace","path":"/a","value":3}]])", 0);
  ASSERT_EQ(store.historySince("t", 1).size(), 2u);
  std::deque<std::string> last;
  for (int v = 4; v <= 60; ++v) {
    const std::string value = v % 3 == 0 ? std::string(static_cast<std::size_t>(v) * 7, 'w') : std::to_string(v);
    ChangeResult r = store.publishJson("t", R"({"a":")" + value + R"("})", "", 0);
    ASSERT_EQ(r.version, static_cast<std::uint64_t>(v));
    last.push_back(r.ops);
    if (last.size() > 3) last.pop_front();
    const auto steps = store.historySince("t", static_cast<std::uint64_t>(v) - std::min<std::uint64_t>(3, v - 1));
    ASSERT_FALSE(steps.empty()) << v;
    if (v >= 7) {
      ASSERT_EQ(steps.size(), 3u);
      for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(steps[i].ops, last[i]) << v;
    }
  }
}

// ---- installText against a model ----------------------------------------------

struct Held {
  std::shared_ptr<const Snapshot> snapshot;
  std::string text;
  std::uint64_t version;
  std::string epoch;
};

std::string randomValue(std::mt19937& random, int key) {
  switch (random() % 6) {
    case 0: return R"({"k":)" + std::to_string(key) + "}";
    case 1: return R"({"k":)" + std::to_string(key) + R"(,"s":")" + std::string(random() % 300, 'a') + "\"}";
    case 2: return R"({"k":)" + std::to_string(key) + R"(,"big":")" + std::string(4090 + random() % 20, 'b') + "\"}";
    case 3: return R"({"k":)" + std::to_string(key) + R"(,"big":")" + std::string(6000 + random() % 3000, 'c') + "\"}";
    case 4: return "[" + std::string(R"({"id":1,"p":)") + std::to_string(key) + R"(},{"id":2,"p":0}])";
    default: return std::to_string(key);
  }
}

// Random whole-text publishes, row changes, patches, deletes and replicas on
// two stores (rows kept, and not), while snapshots are held and dropped at
// random: held snapshots never change, both stores agree on every result,
// and each held snapshot plus the history since it gives the current value.
TEST(TopicStoreInstallText, HeldSnapshotsAndTwoStoresAgreeOverRandomChanges) {
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    std::mt19937 random(seed);
    StoreOptions rowsOptions;
    rowsOptions.historyCount = 6;
    StoreOptions textOptions = rowsOptions;
    textOptions.keepRows = false;
    TopicStore rows(rowsOptions);
    TopicStore text(textOptions);
    std::map<std::string, std::pair<std::string, std::uint64_t>> model;  // topic: (text, version)
    std::vector<Held> held;
    std::map<std::string, std::string> epochOf;
    for (int step = 0; step < 500; ++step) {
      const std::string topic = "t" + std::to_string(random() % 3);
      const int action = static_cast<int>(random() % 12);
      ChangeResult a;
      ChangeResult b;
      bool change = true;
      if (action < 5) {
        const std::string value = randomValue(random, static_cast<int>(random() % 50));
        a = rows.publishJson(topic, value, "", step);
        b = text.publishJson(topic, value, "", step);
      } else if (action < 7) {
        const int key = 1 + static_cast<int>(random() % 4);
        const std::string row = R"({"id":)" + std::to_string(key) + R"(,"p":)" + std::to_string(random() % 9) + "}";
        a = rows.upsert(topic, std::to_string(key), row, "", step);
        b = text.upsert(topic, std::to_string(key), row, "", step);
      } else if (action < 8) {
        const std::string key = std::to_string(1 + random() % 4);
        a = rows.remove(topic, key, "", step);
        b = text.remove(topic, key, "", step);
      } else if (action < 9) {
        const std::string ops = R"([{"op":"replace","path":"/0/p","value":)" + std::to_string(random() % 9) + "}]";
        a = rows.patch(topic, ops, "", step);
        b = text.patch(topic, ops, "", step);
      } else if (action < 10) {
        change = false;
        const bool ea = rows.erase(topic);
        const bool eb = text.erase(topic);
        ASSERT_EQ(ea, eb);
        EXPECT_EQ(ea, model.count(topic) == 1);
        model.erase(topic);
      } else if (action < 11) {
        change = false;
        if (auto s = rows.get(topic)) {
          held.push_back(Held{s, s->json.str(), s->version, s->epoch});
        }
        if (auto s = text.get(topic)) {
          held.push_back(Held{s, s->json.str(), s->version, s->epoch});
        }
      } else {
        change = false;
        // Drop some held snapshots (the next change may then rewrite in place).
        for (std::size_t i = 0; i < held.size();) {
          if (random() % 2 == 0) {
            held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
          } else {
            ++i;
          }
        }
      }
      if (change) {
        ASSERT_EQ(a.status.code(), b.status.code()) << a.status.message() << " / " << b.status.message();
        ASSERT_EQ(a.changed, b.changed) << "seed " << seed << " step " << step;
        ASSERT_EQ(a.version, b.version);
        if (a.changed) {
          const auto now = text.get(topic);
          ASSERT_TRUE(now);
          if (a.created) {
            model[topic] = {now->json.str(), 1};
          } else {
            auto& [t, v] = model[topic];
            // The patch takes the model's text to the new one.
            std::string patched;
            ASSERT_TRUE(applyPatchJson(t, a.ops, patched)) << a.ops;
            EXPECT_TRUE(sameJson(patched, now->json.str())) << "seed " << seed << " step " << step;
            t = now->json.str();
            ++v;
          }
          ASSERT_EQ(model[topic].second, a.version);
        }
      }
      // Every held snapshot is as it was.
      for (const Held& h : held) {
        ASSERT_EQ(h.snapshot->json.str(), h.text) << "seed " << seed << " step " << step;
        ASSERT_EQ(h.snapshot->version, h.version);
        ASSERT_EQ(h.snapshot->epoch, h.epoch);
      }
      // Both stores hold the model's values.
      for (const auto& [name, value] : model) {
        const auto sa = rows.get(name);
        const auto sb = text.get(name);
        ASSERT_TRUE(sa && sb);
        ASSERT_EQ(sa->version, value.second);
        ASSERT_EQ(sb->version, value.second);
        ASSERT_TRUE(sameJson(sa->json.str(), value.first)) << "seed " << seed << " step " << step << " " << name;
        ASSERT_EQ(sb->json.str(), value.first);
      }
    }
    // The history since each held version, applied to the held text, gives the current value.
    for (const Held& h : held) {
      for (TopicStore* store : {&rows, &text}) {
        std::string name;
        for (const auto& [n, v] : model) {
          const auto s = store->get(n);
          if (s && s->epoch == h.epoch) name = n;
        }
        if (name.empty()) continue;
        const auto steps = store->historySince(name, h.version);
        if (steps.empty()) continue;
        std::string value = h.text;
        for (const HistoryStep& s : steps) {
          std::string next;
          ASSERT_TRUE(applyPatchJson(value, s.ops, next)) << s.ops;
          value = std::move(next);
        }
        EXPECT_TRUE(sameJson(value, store->get(name)->json.str()));
      }
    }
  }
}

// A topic kept as rows, read (its lazy text written), then a whole-text
// publish much shorter, then much longer than 4 KiB: each reuses or replaces
// the snapshot, and a reader's copy from before stays.
TEST(TopicStoreInstallText, RowsThenWholeTextShrinkAndGrow) {
  TopicStore store(StoreOptions{});
  std::string rowsText = "[";
  for (int i = 0; i < 100; ++i) {
    if (i > 0) rowsText += ",";
    rowsText += R"({"id":)" + std::to_string(i) + R"(,"p":0})";
  }
  rowsText += "]";
  ASSERT_TRUE(store.publishJson("t", rowsText, "", 0).changed);
  ASSERT_TRUE(store.upsert("t", "5", R"({"id":5,"p":1})", "", 0).changed);
  ASSERT_TRUE(store.remove("t", "7", "", 0).changed);
  const auto lazy = store.get("t");  // not yet read: its text is written on first use, later
  ASSERT_TRUE(store.publishJson("t", R"({"a":1})", "", 0).changed);
  EXPECT_EQ(lazy->version, 3u);
  EXPECT_NE(lazy->json.str().find(R"({"id":5,"p":1})"), std::string::npos);
  EXPECT_EQ(lazy->json.str().find(R"({"id":7,)"), std::string::npos);
  const std::string big = R"({"a":")" + std::string(10000, 'z') + "\"}";
  ASSERT_TRUE(store.publishJson("t", big, "", 0).changed);
  ASSERT_TRUE(store.publishJson("t", "[]", "", 0).changed);
  ASSERT_TRUE(store.upsert("t", "1", R"({"id":1})", "", 0).changed);
  ASSERT_TRUE(store.publishJson("t", big, "", 0).changed);
  EXPECT_EQ(store.get("t")->json, big);
  EXPECT_EQ(store.get("t")->version, 8u);
  const auto steps = store.historySince("t", 4);
  ASSERT_EQ(steps.size(), 4u);
  std::string value = R"({"a":1})";
  for (const HistoryStep& s : steps) {
    std::string next;
    ASSERT_TRUE(applyPatchJson(value, s.ops, next)) << s.ops;
    value = std::move(next);
  }
  EXPECT_EQ(value, big);
}

// Deleted, expired or evicted, then made again: a new epoch at version 1,
// and a snapshot held from before keeps its epoch and text.
TEST(TopicStoreInstallText, RecreatedTopicsStartANewEpoch) {
  StoreOptions options;
  options.ttl = {{"tmp/*", 100}};
  options.memoryBudget = 6000;
  TopicStore store(options);
  ASSERT_TRUE(store.publishJson("tmp/a", R"({"v":1})", "", 0).changed);
  ASSERT_TRUE(store.publishJson("tmp/a", R"({"v":2})", "", 0).changed);
  const auto before = store.get("tmp/a");
  store.advance(500);
  ASSERT_EQ(store.get("tmp/a"), nullptr);
  ChangeResult again = store.publishJson("tmp/a", R"({"v":2})", "", 500);
  EXPECT_TRUE(again.created);
  EXPECT_EQ(again.version, 1u);
  EXPECT_NE(again.epoch, before->epoch);
  EXPECT_EQ(before->json, R"({"v":2})");
  EXPECT_EQ(before->version, 2u);
  // Evicted by a big topic, then made again.
  ASSERT_TRUE(store.publishJson("x", R"({"v":1})", "", 500).changed);
  const auto x1 = store.get("x");
  ASSERT_TRUE(store.publishJson("big", R"({"s":")" + std::string(5300, 'b') + "\"}", "", 500).changed);
  ASSERT_EQ(store.get("x"), nullptr);
  ChangeResult x = store.publishJson("x", R"({"v":5})", "", 500);
  EXPECT_TRUE(x.created);
  EXPECT_NE(x.epoch, x1->epoch);
  EXPECT_EQ(x1->json, R"({"v":1})");
  EXPECT_TRUE(store.publishJson("x", R"({"v":6})", "", 500).changed);
  EXPECT_EQ(store.historySince("x", 1).size(), 1u);
}

}  // namespace
}  // namespace deltacast
