#include "deltacast/json_diff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "../../native/src/text_util.h"
#include "deltacast/json_patch.h"
#include "deltacast/row_key.h"

namespace deltacast {
namespace {

std::string diff(const std::string& a, const std::string& b, const DiffOptions& options = {}) {
  std::string out;
  const Status status = diffJson(a, b, options, out);
  EXPECT_TRUE(status.isOk()) << status.message();
  return out;
}

bool equalJson(const std::string& a, const std::string& b) {
  JsonTape ta;
  JsonTape tb;
  EXPECT_TRUE(ta.parse(a).isOk()) << a;
  EXPECT_TRUE(tb.parse(b).isOk()) << b;
  return jsonEqual(ta, 0, tb, 0);
}

// diff(a, b) applied to a gives b.
void expectRoundTrip(const std::string& a, const std::string& b, const DiffOptions& options = {}) {
  const std::string ops = diff(a, b, options);
  std::string patched;
  const Status status = applyPatchJson(a, ops, patched);
  ASSERT_TRUE(status.isOk()) << status.message() << "\n a: " << a << "\n b: " << b << "\n ops: " << ops;
  EXPECT_TRUE(equalJson(patched, b)) << "\n a: " << a << "\n b: " << b << "\n ops: " << ops << "\n got: " << patched;
}

TEST(JsonDiff, IdenticalDocumentsGiveNoOperations) {
  EXPECT_EQ(diff(R"({"a":[1,2,{"b":3}]})", R"({"a":[1,2,{"b":3}]})"), "[]");
  EXPECT_EQ(diff(R"({ "a" : 1 })", R"({"a":1})"), "[]");          // whitespace only
  EXPECT_EQ(diff(R"({"a":1,"b":2})", R"({"b":2,"a":1})"), "[]");  // member order only
  EXPECT_EQ(diff("[1.0]", "[1]"), "[]");                          // same number
  EXPECT_EQ(diff(R"(["\u0041"])", R"(["A"])"), "[]");             // same string
}

TEST(JsonDiff, ObjectMembers) {
  EXPECT_EQ(diff(R"({"a":1,"b":2})", R"({"a":1,"b":3})"), R"([{"op":"replace","path":"/b","value":3}])");
  EXPECT_EQ(diff(R"({"a":1,"b":2})", R"({"a":1})"), R"([{"op":"remove","path":"/b"}])");
  EXPECT_EQ(diff(R"({"a":1})", R"({"a":1,"c":{"d":[1]}})"), R"([{"op":"add","path":"/c","value":{"d":[1]}}])");
}

TEST(JsonDiff, TypeChangesAtAnyLevel) {
  EXPECT_EQ(diff(R"({"a":1})", "[1]"), R"([{"op":"replace","path":"","value":[1]}])");
  EXPECT_EQ(diff("1", "\"1\""), R"([{"op":"replace","path":"","value":"1"}])");
  EXPECT_EQ(diff(R"({"a":{"b":1}})", R"({"a":[1]})"), R"([{"op":"replace","path":"/a","value":[1]}])");
  EXPECT_EQ(diff(R"({"a":[{"x":1}]})", R"({"a":{"0":{"x":1}}})"),
            R"([{"op":"replace","path":"/a","value":{"0":{"x":1}}}])");
  EXPECT_EQ(diff("true", "false"), R"([{"op":"replace","path":"","value":false}])");
}

// Pads a container so that a few operations stay smaller than replacing it.
const std::string kPad = R"("pad":"................................................................")";

TEST(JsonDiff, EscapesPaths) {
  EXPECT_EQ(diff(R"({"a/b":1,"c~d":2,)" + kPad + "}", R"({"a/b":3,"c~d":4,)" + kPad + "}"),
            R"([{"op":"replace","path":"/a~1b","value":3},{"op":"replace","path":"/c~0d","value":4}])");
  EXPECT_EQ(diff(R"({"q\"":1})", R"({"q\"":2})"), R"([{"op":"replace","path":"/q\"","value":2}])");
  EXPECT_EQ(diff(R"({"\u00e9":1})", R"({"é":2})"), R"([{"op":"replace","path":"/é","value":2}])");
}

TEST(JsonDiff, MinifiesValuesFromIndentedText) {
  EXPECT_EQ(diff(R"({"a":1})", "{\n  \"a\": [ 1, { \"b\" : \"x y\" } ]\n}"),
            R"([{"op":"replace","path":"/a","value":[1,{"b":"x y"}]}])");
}

std::string rows(int from, int to, int skip = -1) {
  std::string out = "[";
  for (int i = from; i < to; ++i) {
    if (i == skip) continue;
    if (out.size() > 1) out += ",";
    out += R"({"id":)" + std::to_string(i) + R"(,"v":)" + std::to_string(i * 10) + "}";
  }
  return out + "]";
}

TEST(JsonDiff, KeyedInsertIsOneAdd) {
  const std::string a = rows(0, 10000, 5000);
  const std::string b = rows(0, 10000);
  EXPECT_EQ(diff(a, b), R"([{"op":"add","path":"/5000","value":{"id":5000,"v":50000}}])");
  EXPECT_EQ(diff(b, a), R"([{"op":"remove","path":"/5000"}])");
}

TEST(JsonDiff, KeyedMoveIsOneMove) {
  // Row 1 moved from the front to the end.
  const std::string a = R"([{"id":1},{"id":2},{"id":3},{"id":4}])";
  const std::string b = R"([{"id":2},{"id":3},{"id":4},{"id":1}])";
  EXPECT_EQ(diff(a, b), R"([{"op":"move","from":"/0","path":"/3"}])");
  EXPECT_EQ(diff(b, a), R"([{"op":"move","from":"/3","path":"/0"}])");
  expectRoundTrip(a, b);
}

TEST(JsonDiff, KeyedChangesRecurseIntoRows) {
  EXPECT_EQ(diff(R"([{"id":"a","p":1,)" + kPad + R"(},{"id":"b","p":2,)" + kPad + "}]",
                 R"([{"id":"b","p":3,)" + kPad + R"(},{"id":"a","p":1,)" + kPad + "}]"),
            R"([{"op":"move","from":"/0","path":"/1"},{"op":"replace","path":"/0/p","value":3}])");
}

TEST(JsonDiff, ArrayKeyOption) {
  const std::string a = R"([{"sku":"x","n":1,)" + kPad + R"(},{"sku":"y","n":2,)" + kPad + "}]";
  const std::string b = R"([{"sku":"y","n":2,)" + kPad + R"(},{"sku":"x","n":1,)" + kPad + "}]";
  DiffOptions bySku;
  bySku.arrayKey = "sku";
  EXPECT_EQ(diff(a, b, bySku), R"([{"op":"move","from":"/0","path":"/1"}])");
  DiffOptions none;
  none.arrayKey = "";
  expectRoundTrip(a, b, none);
  EXPECT_EQ(diff(a, b, none).find("\"move\""), std::string::npos) << diff(a, b, none);
}

TEST(JsonDiff, DuplicateKeysFallBackToPositions) {
  expectRoundTrip(R"([{"id":1,"v":1},{"id":1,"v":2},{"id":2}])", R"([{"id":2},{"id":1,"v":3},{"id":1,"v":2}])");
}

TEST(JsonDiff, UnkeyedArraysUseLcs) {
  EXPECT_EQ(diff("[1,2,3,4,5]", "[1,2,9,3,4,5]"), R"([{"op":"add","path":"/2","value":9}])");
  EXPECT_EQ(diff("[1,2,3,4,5]", "[1,3,4,5]"), R"([{"op":"remove","path":"/1"}])");
  EXPECT_EQ(diff("[1,2,3]", "[1,7,3]"), R"([{"op":"replace","path":"/1","value":7}])");
  expectRoundTrip("[1,2,3,4,5,6,7]", "[7,1,3,2,8,5]");
}

TEST(JsonDiff, LargeUnkeyedArraysStayNearLinear) {
  std::string a = "[";
  std::string b = "[";
  for (int i = 0; i < 100000; ++i) {
    a += (i ? "," : "") + std::to_string(i);
    b += (i ? "," : "") + std::to_string(i % 1000 == 0 ? -i : i);
  }
  a += "]";
  b += "]";
  DiffOptions options;
  options.maxLcsCells = 1000;  // force the index fallback
  expectRoundTrip(a, b, options);
  expectRoundTrip(a, "[1,2]", options);
  expectRoundTrip("[1,2]", a, options);
}

TEST(JsonDiff, LargePatchBecomesReplace) {
  EXPECT_EQ(diff(R"({"a":[1,2,3,4]})", R"({"a":[5,6,7,8]})"), R"([{"op":"replace","path":"/a","value":[5,6,7,8]}])");
}

TEST(JsonDiff, BigIntegersAreExact) {
  EXPECT_EQ(diff(R"({"n":12345678901234567890,)" + kPad + "}", R"({"n":12345678901234567891,)" + kPad + "}"),
            R"([{"op":"replace","path":"/n","value":12345678901234567891}])");
  EXPECT_EQ(diff("[0]", "[-0]"), "[]");
}

TEST(JsonDiff, ReportsWhichTextIsInvalid) {
  std::string out;
  const Status status = diffJson("[1]", "[1,", {}, out);
  EXPECT_EQ(status.code(), ErrorCode::InvalidJson);
  EXPECT_EQ(status.message().rfind("second document:", 0), 0u) << status.message();
}

// ---- randomized: apply(a, diff(a, b)) == b ---------------------------------

class RandomJson {
 public:
  explicit RandomJson(unsigned seed) : rng_(seed) {}

  std::string value(int depth) {
    const int kind = pick(depth > 3 ? 5 : 8);
    switch (kind) {
      case 0: return "null";
      case 1: return pick(2) ? "true" : "false";
      case 2: return std::to_string(pick(20) - 5);
      case 3: return pick(2) ? "1.5" : "-0.25";
      case 4: {
        static const char* const strings[] = {"\"a\"", "\"b\"", "\"\"", "\"x/y\"", "\"t~0\"", "\"\\u00e9\""};
        return strings[pick(6)];
      }
      case 5:
      case 6: return object(depth);
      default: return pick(2) ? array(depth) : rowArray(depth);
    }
  }

  // A mutated copy of a value generated with the same shape habits.
  unsigned pick(unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(rng_); }

 private:
  std::string object(int depth) {
    static const char* const keys[] = {"a", "b", "c", "id", "x/y", "m~n", ""};
    std::string out = "{";
    const unsigned n = pick(5);
    bool used[7] = {};
    for (unsigned i = 0; i < n; ++i) {
      const unsigned k = pick(7);
      if (used[k]) continue;
      used[k] = true;
      if (out.size() > 1) out += ",";
      out += "\"" + std::string(keys[k]) + "\":" + value(depth + 1);
    }
    return out + "}";
  }

  std::string array(int depth) {
    std::string out = "[";
    const unsigned n = pick(6);
    for (unsigned i = 0; i < n; ++i) out += (i ? "," : "") + value(depth + 1);
    return out + "]";
  }

  // Rows keyed by a small id space, so pairs of these share rows, reorder them,
  // insert and delete them.
  std::string rowArray(int depth) {
    std::string out = "[";
    const unsigned n = pick(8);
    bool used[12] = {};
    for (unsigned i = 0; i < n; ++i) {
      const unsigned id = pick(12);
      if (used[id]) continue;
      used[id] = true;
      if (out.size() > 1) out += ",";
      out += "{\"id\":" + std::to_string(id) + ",\"v\":" + (pick(3) ? std::to_string(pick(3)) : value(depth + 2)) + "}";
    }
    return out + "]";
  }

  std::mt19937 rng_;
};

TEST(JsonDiff, RandomDocumentsRoundTrip) {
  for (unsigned seed = 1; seed <= 3000; ++seed) {
    RandomJson gen(seed);
    const std::string a = gen.value(0);
    const std::string b = gen.value(0);
    expectRoundTrip(a, b);
    expectRoundTrip(b, a);
    if (HasFailure()) break;
  }
}

// diffSameShape(a, b) answers with the full diff's patch, or gives up.
ShapeDiff expectSameShape(const std::string& a, const std::string& b) {
  std::string fast = "[prefix]";
  const ShapeDiff shape = diffSameShape(a, b, fast);
  if (shape == ShapeDiff::Other) {
    EXPECT_EQ(fast, "[prefix]") << "\n a: " << a << "\n b: " << b;
    return shape;
  }
  JsonTape second;
  EXPECT_TRUE(second.parse(b).isOk()) << "took an invalid text: " << b;
  std::string full;
  EXPECT_TRUE(diffJson(a, b, DiffOptions{}, full).isOk());
  EXPECT_EQ(fast, "[prefix]" + full) << "\n a: " << a << "\n b: " << b;
  EXPECT_EQ(shape == ShapeDiff::Unchanged, full == "[]") << "\n a: " << a << "\n b: " << b;
  return shape;
}

TEST(JsonDiffSameShape, ScalarChangesAreTheFullDiffs) {
  EXPECT_EQ(expectSameShape(R"({"v":1,"s":"ok"})", R"({"v":2,"s":"ok"})"), ShapeDiff::Changed);
  std::string out;
  ASSERT_EQ(diffSameShape(R"({"v":1,"s":"ok"})", R"({"v":2,"s":"ok"})", out), ShapeDiff::Changed);
  EXPECT_EQ(out, R"([{"op":"replace","path":"/v","value":2}])");
  // Equal by value, as the differ compares.
  EXPECT_EQ(expectSameShape(R"({"v":1.0,"w":-0})", R"({"v":1,"w":0})"), ShapeDiff::Unchanged);
  EXPECT_EQ(expectSameShape(R"({"s":"A"})", R"({"s":"\u0041"})"), ShapeDiff::Unchanged);
  EXPECT_EQ(expectSameShape(R"({"n":18446744073709551616})", R"({"n":18446744073709551617})"), ShapeDiff::Changed);
  // Types change, at any level; a nested object is walked; arrays of the same bytes are skipped.
  EXPECT_EQ(expectSameShape(R"({"a":{"b":1,"c":[1,2]},"d":true})", R"({"a":{"b":"1","c":[1,2]},"d":false})"),
            ShapeDiff::Changed);
  EXPECT_EQ(expectSameShape(R"({"a":{"b":1},"d":null})", R"({"a":7,"d":{"x":1}})"), ShapeDiff::Other);
  EXPECT_EQ(expectSameShape(R"({"a":{"b":1},"d":null})", R"({"a":7,"d":null})"), ShapeDiff::Changed);
  EXPECT_EQ(expectSameShape("5", "6"), ShapeDiff::Changed);
  EXPECT_EQ(expectSameShape(R"({"a":1})", "5"), ShapeDiff::Changed);
  // Keys that need escaping in a pointer and in JSON.
  EXPECT_EQ(expectSameShape(R"({"x/y":1,"m~n":2,"q\"":3,"\u00e9":4})", R"({"x/y":2,"m~n":3,"q\"":3,"\u00e9":4})"),
            ShapeDiff::Other);  // a key with an escape: not taken
  EXPECT_EQ(expectSameShape(R"({"x/y":1,"m~n":2,"é":4})", R"({"x/y":2,"m~n":3,"é":5})"), ShapeDiff::Changed);
  // Many members changed: one replace of the object, as the differ chooses.
  EXPECT_EQ(expectSameShape(R"({"o":{"a":1,"b":2,"c":3,"d":4},"z":0})", R"({"o":{"a":5,"b":6,"c":7,"d":8},"z":0})"),
            ShapeDiff::Changed);
  out.clear();
  ASSERT_EQ(diffSameShape(R"({"o":{"a":1,"b":2,"c":3,"d":4},"z":0})", R"({"o":{"a":5,"b":6,"c":7,"d":8},"z":0})", out),
            ShapeDiff::Changed);
  EXPECT_EQ(out, R"([{"op":"replace","path":"/o","value":{"a":5,"b":6,"c":7,"d":8}}])");
}

TEST(JsonDiffSameShape, GivesUpOnOtherShapesAndInvalidText) {
  const std::string a = R"({"v":1,"s":"ok","l":[1,2]})";
  const char* const others[] = {
      R"({"v":1,"s":"ok"})",                  // a member fewer
      R"({"v":1,"s":"ok","l":[1,2],"x":0})",  // a member more
      R"({"s":"ok","v":1,"l":[1,2]})",        // another order
      R"({"w":1,"s":"ok","l":[1,2]})",        // renamed
      R"({"v":1,"s":"ok","l":[1,3]})",        // an array changed
      R"({"v": 1,"s":"ok","l":[1,2]})",       // whitespace
      R"({"v":01,"s":"ok","l":[1,2]})",       // leading zero
      R"({"v":1.,"s":"ok","l":[1,2]})",       // no digit after '.'
      R"({"v":tru,"s":"ok","l":[1,2]})",      // a broken literal
      R"({"v":truex,"s":"ok","l":[1,2]})",    // a literal running on
      R"({"v":1,"s":"o)"
      "\x01"
      R"(k","l":[1,2]})",                 // a control character
      R"({"v":1,"s":"\q","l":[1,2]})",    // a bad escape
      R"({"v":1,"s":"\u12","l":[1,2]})",  // a short \u escape
      R"({"v":1,"s":"ok","l":[1,2]}x)",   // text after the value
      R"({"v":1,"s":"ok","l":[1,2])",     // cut short
      R"({"v":1,"s":"ok","l":[1,2)",
      R"({"v":1,"s":"ok)",
      R"({"v")",
      "",
      "{",
  };
  for (const char* b : others) EXPECT_EQ(expectSameShape(a, b), ShapeDiff::Other) << b;
  // Invalid UTF-8 in a changed string.
  EXPECT_EQ(expectSameShape(a, std::string(R"({"v":1,"s":")") + "\xC3\x28" + R"(","l":[1,2]})"), ShapeDiff::Other);
  EXPECT_EQ(expectSameShape(a, std::string(R"({"v":1,"s":")") + "\xED\xA0\x80" + R"(","l":[1,2]})"), ShapeDiff::Other);
  EXPECT_EQ(expectSameShape(a, std::string(R"({"v":1,"s":")") + "\xC3\xA9" + R"(","l":[1,2]})"), ShapeDiff::Changed);
}

// Random documents, and copies of them with random scalars swapped for others
// (any type): wherever the same-shape diff answers, it is the full diff.
TEST(JsonDiffSameShape, RandomScalarEditsAreTheFullDiffs) {
  static const char* const scalars[] = {"0",     "-0",   "1",         "1.0",     "1e0",   "2",     "-3.5",
                                        "1e400", "null", "true",      "false",   "\"a\"", "\"b\"", "\"\\u0061\"",
                                        "\"\"",  "12",   "123456789", "\"x/y\"", "\"é\""};
  std::size_t answered = 0;
  for (unsigned seed = 1; seed <= 3000; ++seed) {
    RandomJson gen(seed);
    const std::string a = gen.value(0);
    JsonTape tape;
    ASSERT_TRUE(tape.parse(a).isOk());
    std::string b;
    std::uint32_t at = 0;
    for (std::uint32_t i = 0; i < tape.size(); ++i) {
      const JsonType type = tape[i].type;
      if (type == JsonType::Object || type == JsonType::Array) continue;
      const bool key =
          i > 0 && tape[i].type == JsonType::String && i + 1 < tape.size() && a[tape[i].end] == ':';  // an object's key
      if (key || gen.pick(3) != 0) continue;
      b.append(a, at, tape[i].begin - at);
      b += scalars[gen.pick(sizeof scalars / sizeof scalars[0])];
      at = tape[i].end;
    }
    b.append(a, at, std::string::npos);
    if (expectSameShape(a, b) != ShapeDiff::Other) ++answered;
    if (expectSameShape(b, a) != ShapeDiff::Other) ++answered;
    if (HasFailure()) break;
  }
  EXPECT_GT(answered, 1000u);  // the walk answers most of these, not only the trivial ones
}

// Every text one byte away from a document (each byte replaced by each of
// the 256 values, each byte deleted, each value inserted at each place): the
// same-shape diff answers only for texts the parser takes, with the full
// diff's patch; it refuses the rest. Keys, colons, commas, brackets, escapes,
// UTF-8 sequences, literals and numbers are all edited somewhere.
TEST(JsonDiffSameShape, EverySingleByteEditIsTheFullDiffOrRefused) {
  const std::string documents[] = {
      R"({"a":1,"b":{"c":"x","d":[1,2],"e":null},"f":true,"g":-1.5e3,"h":"\u00e9\"","k~/":"é","z":{}})",
      R"({"o":{"p":{"q":{"r":0,"s":false}}},"t":"","u":12345678901234567890})",
      R"("v\n\/")",
      "-0.5e-7",
  };
  std::size_t answered = 0;
  std::size_t refused = 0;
  for (const std::string& a : documents) {
    const auto check = [&](const std::string& b) {
      (expectSameShape(a, b) == ShapeDiff::Other ? refused : answered)++;
    };
    for (std::size_t i = 0; i < a.size() && !HasFailure(); ++i) {
      for (int c = 0; c < 256; ++c) {
        std::string replaced = a;
        replaced[i] = static_cast<char>(c);
        check(replaced);
        std::string inserted = a;
        inserted.insert(i, 1, static_cast<char>(c));
        check(inserted);
      }
      check(a.substr(0, i) + a.substr(i + 1));
    }
    for (int c = 0; c < 256; ++c) check(a + static_cast<char>(c));
  }
  // Most edits break the text or its shape; thousands are scalar changes it takes.
  EXPECT_GT(answered, 2000u);
  EXPECT_GT(refused, 50000u);
}

// Numbers and strings that are equal by value but not by text, both ways,
// and keys a pointer escapes, at the root and in nested objects.
TEST(JsonDiffSameShape, EqualByValueAndEscapedKeys) {
  const char* const pairs[][2] = {
      {R"({"n":1.0})", R"({"n":1})"},
      {R"({"n":1e2})", R"({"n":100})"},
      {R"({"n":1E2})", R"({"n":100.0})"},
      {R"({"n":-0})", R"({"n":0})"},
      {R"({"n":0})", R"({"n":-0.0})"},
      {R"({"n":0.0})", R"({"n":-0})"},
      {R"({"n":10})", R"({"n":1e1})"},
      {R"({"n":12})", R"({"n":1.2e1})"},
      {R"({"n":9007199254740993})", R"({"n":9007199254740992})"},
      {R"({"n":9007199254740993})", R"({"n":9007199254740992.0})"},
      {R"({"n":1e400})", R"({"n":2e400})"},
      {R"({"n":1e400})", R"({"n":1e400})"},
      {R"({"n":5})", R"({"n":"5"})"},
      {R"({"s":"A"})", R"({"s":"\u0041"})"},
      {R"({"s":"/"})", R"({"s":"\/"})"},
      {R"({"s":"\n"})", R"({"s":"\u000a"})"},
      {R"({"s":"\"q"})", R"({"s":"\u0022q"})"},
      {R"({"s":"ab"})", R"({"s":"a\u0062c"})"},
      {R"({"s":"é"})", R"({"s":"\u00e9"})"},
      {R"({"s":"\ud83d\ude00"})", R"({"s":"😀"})"},
      {R"({"t":true})", R"({"t":false})"},
      {R"({"t":null})", R"({"t":0})"},
      {R"({"~":1,"/":2,"~1":3,"a/b~c":4})", R"({"~":2,"/":3,"~1":4,"a/b~c":5})"},
      {R"({"a/b":{"c~d":1,"e":2}})", R"({"a/b":{"c~d":7,"e":2}})"},
      {R"({"a/b":{"~":{"/":1}}})", R"({"a/b":{"~":{"/":2}}})"},
      {R"({"":{"":1},"x":2})", R"({"":{"":3},"x":2})"},
      {R"({"~/":{"a":1,"b":2,"c":3,"d":4}})", R"({"~/":{"a":5,"b":6,"c":7,"d":8}})"},
  };
  for (const auto& pair : pairs) {
    const std::string a = pair[0];
    const std::string b = pair[1];
    EXPECT_NE(expectSameShape(a, b), ShapeDiff::Other) << a << " " << b;
    EXPECT_NE(expectSameShape(b, a), ShapeDiff::Other) << b << " " << a;
  }
  std::string out;
  ASSERT_EQ(diffSameShape(R"({"a/b":{"~":{"/":1}}})", R"({"a/b":{"~":{"/":2}}})", out), ShapeDiff::Changed);
  EXPECT_EQ(out, R"([{"op":"replace","path":"/a~1b/~0/~1","value":2}])");
  out.clear();
  ASSERT_EQ(diffSameShape(R"({"n":1e2,"s":"\/"})", R"({"n":100,"s":"/"})", out), ShapeDiff::Unchanged);
  EXPECT_EQ(out, "[]");
}

// Patches longer than the walk's buffer: long keys and values, many
// operations, a container's single `replace` after the buffer went out.
TEST(JsonDiffSameShape, LongPatchesAreTheFullDiffs) {
  const std::string longKey(300, 'k');
  const std::string longValue = "\"" + std::string(400, 'v') + "\"";
  std::string a = "{";
  std::string b = "{";
  for (int i = 0; i < 40; ++i) {
    const std::string key = "\"k" + std::to_string(i) + "/~\":";
    a += (i ? "," : "") + key + std::to_string(i);
    b += (i ? "," : "") + key + std::to_string(i + 1000);
  }
  a += ",\"" + longKey + "\":1,\"o\":{\"" + longKey + "\":" + longValue + ",\"p\":{\"x\":1,\"y\":2,\"z\":3}}}";
  b += ",\"" + longKey + "\":" + longValue + ",\"o\":{\"" + longKey + "\":2,\"p\":{\"x\":4,\"y\":5,\"z\":6}}}";
  EXPECT_EQ(expectSameShape(a, b), ShapeDiff::Changed);
  EXPECT_EQ(expectSameShape(b, a), ShapeDiff::Changed);
  // Every member of a long object changed: one replace of it, after the
  // operations written for it went past the buffer.
  std::string c = R"({"s":0,"o":{)";
  std::string d = R"({"s":1,"o":{)";
  for (int i = 0; i < 30; ++i) {
    c += (i ? ",\"" : "\"") + std::string(20, static_cast<char>('a' + i % 26)) + std::to_string(i) + "\":1";
    d += (i ? ",\"" : "\"") + std::string(20, static_cast<char>('a' + i % 26)) + std::to_string(i) + "\":2";
  }
  c += "}}";
  d += "}}";
  EXPECT_EQ(expectSameShape(c, d), ShapeDiff::Changed);
  std::string out = "x";
  ASSERT_EQ(diffSameShape(c, d, out), ShapeDiff::Changed);
  EXPECT_EQ(out.find(R"([{"op":"replace","path":"/s","value":1},{"op":"replace","path":"/o","value":{)"), 1u) << out;
}

// Tiny topics: flat (and sometimes one level nested) objects of a few
// members, their scalars swapped for others that are often equal by value
// in another form; keys a pointer escapes. Each pair is checked against the
// full diff, from an empty `out` and from one that already has text.
TEST(JsonDiffSameShape, RandomTinyObjectsAreTheFullDiffs) {
  static const char* const keys[] = {"v", "s", "id", "~", "/", "a/b", "m~n", "~0", "~1/", "", "price", "k~/~/"};
  constexpr unsigned kKeys = sizeof keys / sizeof keys[0];
  // Scalars, separated by spaces; none has one.
  const std::string pool =
      R"(0 -0 0.0 1 1.0 1e0 10 1e1 100 1e2 1E2 -1 -1.0 123456 123457 1.5 15e-1 1e400 2e400 -1e400 )"
      R"(9007199254740993 9007199254740992 null true false "" "ok" "no" "\u006fk" "o\u006b" "\/" "/" "~" "é" )"
      R"("\u00e9" "\n" "\u000a" "a\"b" "a\u0022b" "\ud83d\ude00" "😀")";
  std::vector<std::string> scalars;
  for (std::size_t at = 0; at < pool.size();) {
    const std::size_t space = std::min(pool.find(' ', at), pool.size());
    scalars.push_back(pool.substr(at, space - at));
    at = space + 1;
  }
  const auto kScalars = static_cast<unsigned>(scalars.size());
  std::mt19937 rng(20240611);
  const auto pick = [&](unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(rng); };
  std::size_t changed = 0;
  std::size_t unchanged = 0;
  for (int round = 0; round < 20000 && !HasFailure(); ++round) {
    std::string a = "{";
    std::string b = "{";
    bool used[kKeys] = {};
    const unsigned members = 1 + pick(5);
    for (unsigned m = 0; m < members; ++m) {
      const unsigned k = pick(kKeys);
      if (used[k]) continue;
      used[k] = true;
      const std::string key = std::string(a.size() > 1 ? "," : "") + "\"" + keys[k] + "\":";
      a += key;
      b += key;
      if (pick(6) == 0) {  // a nested object of one or two members
        const unsigned inner = pick(kKeys);
        const std::string x = "{\"" + std::string(keys[inner]) + "\":";
        a += x + scalars[pick(kScalars)];
        b += x + scalars[pick(kScalars)];
        if (pick(2) == 0) {
          a += ",\"z\":" + scalars[pick(kScalars)];
          b += ",\"z\":" + scalars[pick(kScalars)];
        }
        a += "}";
        b += "}";
        continue;
      }
      const unsigned s = pick(kScalars);
      a += scalars[s];
      b += pick(3) == 0 ? scalars[s] : scalars[pick(kScalars)];
    }
    a += "}";
    b += "}";
    // The current text of a topic is compact and valid; the new one is walked.
    const ShapeDiff shape = expectSameShape(a, b);
    EXPECT_NE(shape, ShapeDiff::Other) << a << " " << b;
    (shape == ShapeDiff::Changed ? changed : unchanged)++;
    std::string fromEmpty;
    std::string full;
    ASSERT_TRUE(diffJson(a, b, DiffOptions{}, full).isOk());
    EXPECT_EQ(diffSameShape(a, b, fromEmpty), shape);
    EXPECT_EQ(fromEmpty, full) << a << " " << b;
  }
  EXPECT_GT(changed, 10000u);
  EXPECT_GT(unchanged, 500u);
}

// `json` with whitespace after every ',' and ':' and inside every container.
std::string spaced(const std::string& json) {
  std::string out;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') {
      const std::size_t start = i++;
      while (json[i] != '"') i += json[i] == '\\' ? 2 : 1;
      out.append(json, start, i + 1 - start);
      continue;
    }
    if (c == '}' || c == ']') out += "\n";
    out += c;
    if (c == ',' || c == ':') out += " ";
    if (c == '{' || c == '[') out += "\n  ";
  }
  return out;
}

// Whitespace changes nothing in a patch: the values go minified, and the
// choice of one `replace` counts their compact length.
TEST(JsonDiff, WhitespaceGivesThePatchOfTheCompactForm) {
  std::size_t replaced = 0;
  for (unsigned seed = 1; seed <= 2000; ++seed) {
    RandomJson gen(seed);
    const std::string a = gen.value(0);
    const std::string b = gen.value(0);
    const std::string compact = diff(a, b);
    EXPECT_EQ(diff(a, spaced(b)), compact) << "\n a: " << a << "\n b: " << b;
    EXPECT_EQ(diff(spaced(a), spaced(b)), compact) << "\n a: " << a << "\n b: " << b;
    if (compact.find(R"("op":"replace","path":"")") != std::string::npos) ++replaced;
    if (HasFailure()) break;
  }
  EXPECT_GT(replaced, 100u);  // the choice of one replace was made often
  // A container whose operations are longer than its compact text but not
  // than its spaced text: one replace either way.
  const std::string a = R"({"o":{"a":1,"b":2,"c":3,"d":4,"e":5}})";
  const std::string b = R"({"o":{"a":6,"b":7,"c":8,"d":9,"e":0}})";
  EXPECT_EQ(diff(a, b), R"([{"op":"replace","path":"/o","value":{"a":6,"b":7,"c":8,"d":9,"e":0}}])");
  EXPECT_EQ(diff(a, spaced(b)), diff(a, b));
}

// A tape parsed with a guide is the same as one parsed without.
void expectSameTape(const std::string& guideText, const std::string& text) {
  JsonTape guide;
  JsonTape plain;
  JsonTape guided;
  ASSERT_TRUE(guide.parse(guideText).isOk());
  ASSERT_TRUE(plain.parse(text).isOk());
  ASSERT_TRUE(guided.parse(text, {}, &guide).isOk());
  ASSERT_EQ(plain.size(), guided.size()) << text;
  for (std::uint32_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].begin, guided[i].begin) << i;
    EXPECT_EQ(plain[i].end, guided[i].end) << i;
    EXPECT_EQ(plain[i].next, guided[i].next) << i;
    EXPECT_EQ(plain[i].count, guided[i].count) << i;
    EXPECT_EQ(plain[i].type, guided[i].type) << i;
    EXPECT_EQ(plain[i].flags, guided[i].flags) << i;
  }
}

TEST(JsonTape, GuidedParseEqualsPlainParse) {
  for (unsigned seed = 1; seed <= 2000; ++seed) {
    RandomJson gen(seed);
    const std::string a = gen.value(0);
    const std::string b = gen.value(0);
    expectSameTape(a, b);
    expectSameTape(a, a);
    expectSameTape(b, "[" + a + "," + b + "," + a + "]");
    if (HasFailure()) break;
  }
  // Shared rows around an insertion, a deletion and a change.
  expectSameTape(R"([{"id":1},{"id":2},{"id":3},{"id":4}])", R"([{"id":1},{"id":9},{"id":2},{"id":4,"x":[1]}])");
  // A number that extends the guide's number is parsed, not copied.
  expectSameTape(R"({"a":[12],"b":{"c":1}})", R"({"a":[123],"b":{"c":12}})");
}

TEST(JsonTape, GuidedParseStillValidates) {
  JsonTape guide;
  ASSERT_TRUE(guide.parse(R"([{"id":1},{"id":2}])").isOk());
  JsonTape tape;
  EXPECT_EQ(tape.parse(R"([{"id":1},{"id":2}x])", {}, &guide).code(), ErrorCode::InvalidJson);
  EXPECT_EQ(tape.parse(R"([{"id":1},{"id":2})", {}, &guide).code(), ErrorCode::InvalidJson);
  EXPECT_EQ(tape.parse(R"([{"id":1} {"id":2}])", {}, &guide).code(), ErrorCode::InvalidJson);
}

TEST(JsonDiff, RandomRowPermutationsRoundTrip) {
  std::mt19937 rng(42);
  for (int round = 0; round < 500; ++round) {
    std::vector<int> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(i);
    std::shuffle(ids.begin(), ids.end(), rng);
    const int keepA = 20 + static_cast<int>(rng() % 20);
    const int keepB = 20 + static_cast<int>(rng() % 20);
    std::vector<int> a(ids.begin(), ids.begin() + keepA);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<int> b(ids.begin(), ids.begin() + keepB);
    auto render = [&](const std::vector<int>& v, int salt) {
      std::string out = "[";
      for (std::size_t i = 0; i < v.size(); ++i) {
        out += (i ? "," : "") + std::string("{\"id\":\"r") + std::to_string(v[i]) +
               "\",\"p\":" + std::to_string((v[i] * 7 + salt * (v[i] % 3 == 0)) % 11) + "}";
      }
      return out + "]";
    };
    expectRoundTrip(render(a, 0), render(b, round));
    if (HasFailure()) break;
  }
}

TEST(JsonDiff, RowKeysAreEqualAsUpsertSeesThem) {
  // 1 and 1.0 are one row: the row is changed in place, not removed and added.
  const std::string a = R"([{"id":1,"v":1,)" + kPad + R"(},{"id":2,"v":2,)" + kPad + "}]";
  const std::string b = R"([{"id":2,"v":2,)" + kPad + R"(},{"id":1.0,"v":3,)" + kPad + "}]";
  EXPECT_EQ(diff(a, b), R"([{"op":"move","from":"/0","path":"/1"},{"op":"replace","path":"/1/v","value":3}])");
  // 2^53 and 2^53 + 1 are two rows (a double would take them for one).
  const std::string c = R"([{"id":9007199254740992,)" + kPad + R"(},{"id":9007199254740993,)" + kPad + "}]";
  const std::string d = R"([{"id":9007199254740993,)" + kPad + R"(},{"id":9007199254740992,)" + kPad + "}]";
  EXPECT_EQ(diff(c, d), R"([{"op":"move","from":"/0","path":"/1"}])");
  // "1" and 1 are two rows.
  const std::string e = R"([{"id":"1",)" + kPad + R"(},{"id":1,)" + kPad + "}]";
  const std::string f = R"([{"id":1,)" + kPad + R"(},{"id":"1",)" + kPad + "}]";
  EXPECT_EQ(diff(e, f), R"([{"op":"move","from":"/0","path":"/1"}])");
  expectRoundTrip(a, b);
  expectRoundTrip(c, d);
  expectRoundTrip(e, f);
}

TEST(JsonDiff, CanonicalRowKeys) {
  std::string storage;
  auto key = [&](std::string_view raw) { return std::string(canonicalRowKey(raw, storage)); };
  EXPECT_EQ(key("1"), "1");
  EXPECT_EQ(key("1.0"), "1");
  EXPECT_EQ(key("1e0"), "1");
  EXPECT_EQ(key("10e-1"), "1");
  EXPECT_EQ(key("0.1e1"), "1");
  EXPECT_EQ(key("-0"), "0");
  EXPECT_EQ(key("-0.0e5"), "0");
  EXPECT_EQ(key("1.5"), "15e-1");
  EXPECT_EQ(key("150e-2"), "15e-1");
  EXPECT_EQ(key("1E2"), "100");
  EXPECT_EQ(key("-12.50"), "-125e-1");
  EXPECT_EQ(key("1e400"), "1e400");
  EXPECT_EQ(key("10e399"), "1e400");
  EXPECT_EQ(key("9007199254740993"), "9007199254740993");
  EXPECT_EQ(key(R"("a")"), R"("a")");
  EXPECT_EQ(key(R"("\u0061")"), R"("a")");
  EXPECT_TRUE(sameRowKey("1", "1.0"));
  EXPECT_FALSE(sameRowKey("9007199254740992", "9007199254740993"));
  EXPECT_FALSE(sameRowKey(R"("1")", "1"));
  EXPECT_FALSE(sameRowKey("1e99999999999999999999", "1e99999999999999999998"));
}

}  // namespace
}  // namespace deltacast

namespace deltacast {
namespace {

// bytesEqual (text_util.h), the comparison the diff and the parser use for
// short spans: every length up to 40, a difference at every position.
TEST(TextUtil, BytesEqualAtEveryLengthAndPosition) {
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string a(n, 'x');
    for (std::size_t i = 0; i < n; ++i) a[i] = static_cast<char>('a' + (i * 7) % 26);
    std::string b = a;
    ASSERT_TRUE(bytesEqual(a.data(), b.data(), n)) << n;
    ASSERT_TRUE(textEqual(a, b)) << n;
    for (std::size_t i = 0; i < n; ++i) {
      b[i] = static_cast<char>(b[i] ^ 0x80);  // a high bit: compared as unsigned
      ASSERT_FALSE(bytesEqual(a.data(), b.data(), n)) << n << " at " << i;
      b[i] = a[i];
    }
    if (n > 0) {
      ASSERT_FALSE(textEqual(a, std::string_view(b).substr(0, n - 1))) << n;
    }
  }
}

}  // namespace
}  // namespace deltacast
