// Topics of keyed rows kept row by row (StoreOptions::keepRows) give exactly
// what the whole-text path gives: the same results, errors, snapshots,
// history and diffs, for random sequences of upserts, removes, row patches,
// whole publishes and deletes (seed printed; DELTACAST_SEED=<n> replays one).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "deltacast/json_patch.h"
#include "deltacast/topic_store.h"

namespace deltacast {
namespace {

StoreOptions optionsFor(bool keepRows) {
  StoreOptions options;
  options.keepRows = keepRows;
  options.historyCount = 8;
  return options;
}

std::string describe(const ChangeResult& r) {
  std::string s =
      r.status.isOk() ? std::string("ok") : std::string(errorCodeName(r.status.code())) + " " + r.status.message();
  s += r.changed ? " changed" : "";
  s += r.duplicate ? " duplicate" : "";
  s += r.created ? " created" : "";
  s += " v" + std::to_string(r.version) + " " + r.ops;
  return s;
}

// Both stores, and a third that only ever gets whole values (publishJson of
// what the row store holds after each change): its operations must be the
// row store's.
struct Pair {
  TopicStore rows{optionsFor(true)};
  TopicStore whole{optionsFor(false)};
  TopicStore published{optionsFor(false)};
  std::vector<std::pair<std::shared_ptr<const Snapshot>, std::shared_ptr<const Snapshot>>> held;

  void check(const std::string& step, const ChangeResult& a, const ChangeResult& b, const std::string& topic) {
    ASSERT_EQ(describe(a), describe(b)) << step;
    const auto sa = rows.get(topic);
    const auto sb = whole.get(topic);
    ASSERT_EQ(sa == nullptr, sb == nullptr) << step;
    if (!sa) return;
    ASSERT_EQ(sa->version, sb->version) << step;
    ASSERT_EQ(sa->json.size(), sb->json.size()) << step;
    const auto ha = rows.historySince(topic, sa->version > 3 ? sa->version - 3 : 1);
    const auto hb = whole.historySince(topic, sb->version > 3 ? sb->version - 3 : 1);
    ASSERT_EQ(ha.size(), hb.size()) << step;
    for (std::size_t i = 0; i < ha.size(); ++i) {
      ASSERT_EQ(ha[i].ops, hb[i].ops) << step;
      ASSERT_EQ(ha[i].to, hb[i].to) << step;
    }
    ASSERT_EQ(rows.stats().changes, whole.stats().changes) << step;
    ASSERT_EQ(rows.stats().unchanged, whole.stats().unchanged) << step;
    ASSERT_EQ(rows.stats().rejected, whole.stats().rejected) << step;
  }
};

std::string keyText(std::mt19937_64& random) {
  static const char* const kKeys[] = {"1",
                                      "2",
                                      "3",
                                      "1.0",
                                      "4e0",
                                      "\"1\"",
                                      "\"a\"",
                                      "\"\\u0062\"",
                                      "\"b\"",
                                      "\"c~/d\"",
                                      "-0",
                                      "0",
                                      "12345678901234567890",
                                      "\"\\u00e9\""};
  return kKeys[random() % (sizeof kKeys / sizeof kKeys[0])];
}

std::string valueText(std::mt19937_64& random, int depth = 0) {
  switch (random() % (depth > 1 ? 4 : 7)) {
    case 0: return std::to_string(random() % 100);
    case 1: return random() % 2 ? "true" : "null";
    case 2: return random() % 3 == 0 ? "\"q\\\"t\"" : "\"s" + std::to_string(random() % 5) + "\"";
    case 3: return random() % 2 ? "1.50" : "-7";
    case 4: return "[" + valueText(random, depth + 1) + "," + valueText(random, depth + 1) + "]";
    case 5: return "{\"a\":" + valueText(random, depth + 1) + ",\"b\":" + valueText(random, depth + 1) + "}";
    default: return "{}";
  }
}

std::string rowText(std::mt19937_64& random, const std::string& key) {
  std::string row = "{";
  const bool keyFirst = random() % 4 != 0;
  if (keyFirst) row += "\"id\":" + key + ",";
  row += "\"v\":" + valueText(random);
  if (random() % 2) row += ",\"o\":" + valueText(random);
  if (random() % 3 == 0) row += ",\"s\":" + valueText(random);
  if (!keyFirst) row += ",\"id\":" + key;
  if (random() % 8 == 0) row += " ";  // not compact
  return row + "}";
}

std::string wholeText(std::mt19937_64& random) {
  switch (random() % 6) {
    case 0: return "{\"not\":\"rows\"}";
    case 1: return "[1,2,3]";
    case 2: return "[{\"id\":1},{\"id\":1.0}]";  // keys repeat
    case 3: return "[]";
    default: {
      std::string doc = "[";
      const std::size_t n = random() % 6;
      for (std::size_t i = 0; i < n; ++i) doc += (i ? "," : "") + rowText(random, std::to_string(i * 3 + random() % 3));
      return doc + "]";
    }
  }
}

// The current value's rows (for patches that name indices and keys).
std::size_t rowCount(const TopicStore& store, const std::string& topic, std::vector<std::string>& keys) {
  keys.clear();
  const auto snapshot = store.get(topic);
  if (!snapshot) return 0;
  rapidjson::Document doc;
  if (!parseDocument(snapshot->json, doc, {}, Numbers::AsText) || !doc.IsArray()) return 0;
  for (const auto& row : doc.GetArray()) {
    std::string key = "null";
    if (row.IsObject() && row.HasMember("id")) {
      key.clear();
      serializeDocument(row["id"], key);
    }
    keys.push_back(key);
  }
  return doc.Size();
}

std::string patchText(std::mt19937_64& random, std::size_t count, const std::vector<std::string>& keys) {
  const std::size_t i = count == 0 ? 0 : random() % count;
  const std::size_t j = count == 0 ? 0 : random() % count;
  const std::string row = "/" + std::to_string(i);
  switch (random() % 14) {
    case 0: return "[{\"op\":\"replace\",\"path\":\"" + row + "/v\",\"value\":" + valueText(random) + "}]";
    case 1: return "[{\"op\":\"add\",\"path\":\"" + row + "/n\",\"value\":" + valueText(random) + "}]";
    case 2: return "[{\"op\":\"remove\",\"path\":\"" + row + "/o\"}]";
    case 3:  // the whole row, same key (as the immutable publishes send it)
      return "[{\"op\":\"replace\",\"path\":\"" + row +
             "\",\"value\":" + rowText(random, i < keys.size() ? keys[i] : "1") + "}]";
    case 4: return "[{\"op\":\"replace\",\"path\":\"" + row + "\",\"value\":" + rowText(random, keyText(random)) + "}]";
    case 5: return "[{\"op\":\"test\",\"path\":\"" + row + "/v\",\"value\":" + valueText(random) + "}]";
    case 6:
      return "[{\"op\":\"replace\",\"path\":\"" + row + "/v\",\"value\":1},{\"op\":\"replace\",\"path\":\"/" +
             std::to_string(j) + "\",\"value\":" + rowText(random, j < keys.size() ? keys[j] : "1") +
             "},{\"op\":\"add\",\"path\":\"" + row + "/w\",\"value\":" + valueText(random) + "}]";
    case 7: return "[{\"op\":\"move\",\"from\":\"" + row + "/v\",\"path\":\"" + row + "/w\"}]";
    case 8: return "[{\"op\":\"copy\",\"from\":\"" + row + "/v\",\"path\":\"" + row + "/w\"}]";
    case 9: return "[{\"op\":\"add\",\"path\":\"/-\",\"value\":" + rowText(random, keyText(random)) + "}]";
    case 10: return "[{\"op\":\"replace\",\"path\":\"" + row + "/o/a\",\"value\":" + valueText(random) + "}]";
    case 11: return "[{\"op\":\"replace\",\"path\":\"/" + std::to_string(count + 1) + "/v\",\"value\":1}]";
    case 12: return "[{\"op\":\"replace\",\"path\":\"" + row + "/id\",\"value\":" + keyText(random) + "}]";
    default:  // the second fails: nothing may change
      return "[{\"op\":\"replace\",\"path\":\"" + row + "/v\",\"value\":5},{\"op\":\"test\",\"path\":\"" + row +
             "/v\",\"value\":6}]";
  }
}

TEST(TopicStoreRows, RandomSequencesMatchTheWholeTextPath) {
  std::uint64_t seed = std::random_device{}();
  if (const char* given = std::getenv("DELTACAST_SEED")) seed = std::strtoull(given, nullptr, 10);
  std::cout << "TopicStoreRows seed " << seed << " (rerun with DELTACAST_SEED=" << seed << ")\n";
  std::mt19937_64 random(seed);
  for (int round = 0; round < 40; ++round) {
    Pair pair;
    const std::string topic = "t";
    std::vector<std::string> keys;
    for (int step = 0; step < 150; ++step) {
      const std::string label =
          "seed " + std::to_string(seed) + " round " + std::to_string(round) + " step " + std::to_string(step);
      const std::string changeId = random() % 10 == 0 ? "id" + std::to_string(random() % 4) : "";
      const std::int64_t now = round * 1000 + step;
      ChangeResult a;
      ChangeResult b;
      std::string what;
      switch (random() % 20) {
        case 0:
        case 1: {
          const std::string doc = wholeText(random);
          what = "publishJson " + doc;
          a = pair.rows.publishJson(topic, doc, changeId, now);
          b = pair.whole.publishJson(topic, doc, changeId, now);
          break;
        }
        case 2: {
          what = "erase";
          pair.rows.erase(topic);
          pair.whole.erase(topic);
          pair.published.erase(topic);
          break;
        }
        case 3:
        case 4:
        case 5:
        case 6: {
          const std::size_t count = rowCount(pair.whole, topic, keys);
          const std::string ops = patchText(random, count, keys);
          what = "patch " + ops;
          a = pair.rows.patch(topic, ops, changeId, now);
          b = pair.whole.patch(topic, ops, changeId, now);
          break;
        }
        case 7:
        case 8:
        case 9: {
          const std::string key = keyText(random);
          what = "remove " + key;
          a = pair.rows.remove(topic, key, changeId, now);
          b = pair.whole.remove(topic, key, changeId, now);
          break;
        }
        default: {
          const std::string key = keyText(random);
          // Sometimes the key spelled another way (1 and 1.0 are one row).
          const std::string given = random() % 5 == 0 && key == "1" ? "1.0" : key;
          const std::string row = random() % 20 == 0 ? "[1]" : rowText(random, key);
          what = "upsert " + given + " " + row;
          a = pair.rows.upsert(topic, given, row, changeId, now);
          b = pair.whole.upsert(topic, given, row, changeId, now);
          break;
        }
      }
      pair.check(label + ": " + what, a, b, topic);
      if (HasFatalFailure()) return;
      const auto sa = pair.rows.get(topic);
      if (sa && a.changed) {
        // The same value published whole gives the same operations.
        const ChangeResult c = pair.published.publishJson(topic, sa->json.str(), "", now);
        if (!c.created) {
          ASSERT_EQ(c.ops, a.ops) << label << ": " << what;
        }
      }
      if (sa && random() % 3 == 0) pair.held.emplace_back(sa, pair.whole.get(topic));  // read later (lazy text)
      if (sa && random() % 4 == 0) {
        (void)sa->json.str();  // sometimes read now
      }
      if (sa && !pair.held.empty() && random() % 4 == 0) {
        const auto& [ha, hb] = pair.held[random() % pair.held.size()];
        std::string da;
        std::string db;
        const bool oka = pair.rows.diffFrom(*ha, topic, da);
        const bool okb = pair.whole.diffFrom(*hb, topic, db);
        // Epochs are the stores' own: compare only where both still match.
        if (oka && okb) {
          ASSERT_EQ(da, db) << label << ": diffFrom v" << ha->version;
        }
      }
    }
    const auto sa = pair.rows.get(topic);
    const auto sb = pair.whole.get(topic);
    if (sa) {
      ASSERT_EQ(std::string(sa->json), std::string(sb->json)) << "seed " << seed << " round " << round;
    }
    for (const auto& [ha, hb] : pair.held) {
      ASSERT_EQ(ha->version, hb->version);
      ASSERT_EQ(ha->json, hb->json.str()) << "seed " << seed << " round " << round << " v" << ha->version;
    }
  }
}

// Rows {"id":i,"p":7i}, with `p` of some rows given.
std::string board(std::size_t rows, const std::map<std::size_t, int>& prices = {}) {
  std::string doc = "[";
  for (std::size_t i = 0; i < rows; ++i) {
    const auto given = prices.find(i);
    const long long p = given != prices.end() ? given->second : static_cast<long long>(i * 7);
    doc += (i ? ",{\"id\":" : "{\"id\":") + std::to_string(i) + ",\"p\":" + std::to_string(p) + "}";
  }
  return doc + "]";
}

TEST(TopicStoreRows, FirstLastAndOnlyRow) {
  for (const bool keep : {true, false}) {
    TopicStore store(optionsFor(keep));
    ASSERT_TRUE(store.publishJson("t", board(3), "", 0).changed);
    EXPECT_EQ(store.remove("t", "0", "", 1).ops, R"([{"op":"remove","path":"/0"}])");
    EXPECT_EQ(store.remove("t", "2", "", 2).ops, R"([{"op":"remove","path":"/1"}])");
    EXPECT_EQ(store.upsert("t", "1", R"({"id":1,"p":8})", "", 3).ops, R"([{"op":"replace","path":"/0/p","value":8}])");
    EXPECT_EQ(store.get("t")->json, R"([{"id":1,"p":8}])");
    EXPECT_EQ(store.remove("t", "1", "", 4).ops, R"([{"op":"remove","path":"/0"}])");
    EXPECT_EQ(store.get("t")->json, "[]");
    EXPECT_EQ(store.upsert("t", "\"1\"", R"({"id":"1"})", "", 5).ops,
              R"([{"op":"add","path":"/0","value":{"id":"1"}}])");
    EXPECT_EQ(store.upsert("t", "1", R"({"id":1})", "", 6).ops, R"([{"op":"add","path":"/1","value":{"id":1}}])");
    EXPECT_EQ(store.get("t")->json, R"([{"id":"1"},{"id":1}])");
    EXPECT_EQ(store.get("t")->version, 7u);
  }
}

TEST(TopicStoreRows, ALargeChangeOfASmallTopicIsOneReplace) {
  TopicStore store(optionsFor(true));
  ASSERT_TRUE(store.publishJson("t", R"([{"id":1,"a":1,"b":2,"c":3}])", "", 0).changed);
  const ChangeResult r = store.upsert("t", "1", R"({"id":1,"x":[1,2,3],"y":{"z":true}})", "", 1);
  EXPECT_EQ(r.ops, R"([{"op":"replace","path":"/0","value":{"id":1,"x":[1,2,3],"y":{"z":true}}}])");
}

TEST(TopicStoreRows, APatchOfSeveralRowsIsTheirDiffsInIndexOrder) {
  TopicStore store(optionsFor(true));
  ASSERT_TRUE(store.publishJson("t", board(100), "", 0).changed);
  const ChangeResult r = store.patch("t",
                                     R"([{"op":"replace","path":"/70","value":{"id":70,"p":1}},)"
                                     R"({"op":"replace","path":"/3","value":{"id":3,"p":2}}])",
                                     "", 1);
  EXPECT_EQ(r.ops, R"([{"op":"replace","path":"/3/p","value":2},{"op":"replace","path":"/70/p","value":1}])");
  // A failing operation changes nothing, and says which one failed.
  const ChangeResult failed =
      store.patch("t", R"([{"op":"replace","path":"/4/p","value":9},{"op":"test","path":"/5/p","value":0}])", "", 2);
  EXPECT_EQ(failed.status.code(), ErrorCode::PatchTestFailed);
  EXPECT_EQ(store.get("t")->version, 2u);
  EXPECT_EQ(store.get("t")->json, board(100, {{3, 2}, {70, 1}}));
}

TEST(TopicStoreRows, SnapshotsKeepTheirTextAfterLaterChanges) {
  TopicStore store(optionsFor(true));
  ASSERT_TRUE(store.publishJson("t", board(200), "", 0).changed);
  ASSERT_TRUE(store.upsert("t", "5", R"({"id":5,"p":0})", "", 1).changed);
  const auto v2 = store.get("t");
  EXPECT_FALSE(v2->json.materialized());  // nothing read it yet
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(store.upsert("t", std::to_string(i), "{\"id\":" + std::to_string(i) + ",\"p\":-1}", "", 2 + i).changed);
  ASSERT_TRUE(store.remove("t", "7", "", 400).changed);
  const std::string expected = board(200, {{5, 0}});
  EXPECT_EQ(v2->json, expected);
  EXPECT_EQ(v2->json.size(), expected.size());
  std::string ops;
  ASSERT_TRUE(store.diffFrom(*v2, "t", ops));
  EXPECT_NE(ops, "[]");
}

// Hundreds of rows (several chunks): removals empty and repack chunks, keys
// are found across them; every answer and value as on the whole-text path.
TEST(TopicStoreRows, ManyRowsAcrossChunksMatchTheWholeTextPath) {
  std::uint64_t seed = std::random_device{}();
  if (const char* given = std::getenv("DELTACAST_SEED")) seed = std::strtoull(given, nullptr, 10);
  std::mt19937_64 random(seed);
  Pair pair;
  ASSERT_TRUE(pair.rows.publishJson("t", board(300), "", 0).changed);
  ASSERT_TRUE(pair.whole.publishJson("t", board(300), "", 0).changed);
  for (int step = 1; step < 3000; ++step) {
    const std::string id = std::to_string(random() % 400);
    ChangeResult a;
    ChangeResult b;
    const int kind = static_cast<int>(random() % 10);
    if (kind < 4) {
      a = pair.rows.remove("t", id, "", step);
      b = pair.whole.remove("t", id, "", step);
    } else if (kind < 9) {
      const std::string row = "{\"id\":" + id + ",\"p\":" + std::to_string(random() % 50) + "}";
      a = pair.rows.upsert("t", id, row, "", step);
      b = pair.whole.upsert("t", id, row, "", step);
    } else {
      std::vector<std::string> keys;
      const std::size_t count = rowCount(pair.whole, "t", keys);
      if (count == 0) continue;
      const std::size_t i = random() % count;
      const std::string ops = "[{\"op\":\"replace\",\"path\":\"/" + std::to_string(i) +
                              "/p\",\"value\":" + std::to_string(random() % 50) + "}]";
      a = pair.rows.patch("t", ops, "", step);
      b = pair.whole.patch("t", ops, "", step);
    }
    pair.check("seed " + std::to_string(seed) + " step " + std::to_string(step), a, b, "t");
    if (HasFatalFailure()) return;
    if (step % 97 == 0) {
      ASSERT_EQ(pair.rows.get("t")->json, pair.whole.get("t")->json.str()) << "seed " << seed;
    }
  }
  ASSERT_EQ(pair.rows.get("t")->json, pair.whole.get("t")->json.str()) << "seed " << seed;
}

TEST(TopicStoreRows, SnapshotsReadOnAnotherThreadWhileRowsChange) {
  TopicStore store(optionsFor(true));
  ASSERT_TRUE(store.publishJson("t", board(500), "", 0).changed);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load()) {
      const auto snapshot = store.get("t");
      const std::string_view text = snapshot->json;  // joined here or on the core thread, once
      rapidjson::Document doc;
      if (text.size() != snapshot->json.size() || !parseDocument(text, doc) || !doc.IsArray()) ++bad;
      ++reads;
    }
  });
  // The changes overlap the reads: they start once the reader has read, and
  // go on (2,000 at least, 200,000 at most) until it has read 50 times.
  while (reads.load() == 0) std::this_thread::yield();
  for (int i = 0; i < 200000 && (i < 2000 || reads.load() < 50); ++i) {
    const std::string id = std::to_string(i % 600);
    if (i % 7 == 0) {
      store.remove("t", id, "", i);
    } else {
      store.upsert("t", id, "{\"id\":" + id + ",\"p\":" + std::to_string(i) + "}", "", i);
    }
    if (i % 50 == 0) (void)store.get("t")->json.str();  // the core thread reads some too
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace deltacast
