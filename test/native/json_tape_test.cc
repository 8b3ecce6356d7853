#include "deltacast/json_tape.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace deltacast {
namespace {

TEST(JsonTape, IndexesNestedValues) {
  const std::string text = R"({"a":[1,"x",null],"b":{"c":true}})";
  JsonTape tape;
  ASSERT_TRUE(tape.parse(text).isOk());
  ASSERT_EQ(tape.size(), 10u);  // object, a, [, 1, "x", null, b, {, c, true
  EXPECT_EQ(tape[0].type, JsonType::Object);
  EXPECT_EQ(tape[0].count, 2u);
  EXPECT_EQ(tape[0].next, 10u);
  EXPECT_EQ(tape.raw(1), "\"a\"");
  EXPECT_EQ(tape[2].type, JsonType::Array);
  EXPECT_EQ(tape[2].count, 3u);
  EXPECT_EQ(tape[2].next, 6u);
  EXPECT_EQ(tape.raw(2), R"([1,"x",null])");
  EXPECT_EQ(tape[7].type, JsonType::Object);
  EXPECT_EQ(tape.raw(9), "true");
  EXPECT_TRUE(tape.compact());
}

TEST(JsonTape, NotesWhitespaceAndFlags) {
  JsonTape tape;
  ASSERT_TRUE(tape.parse(R"( [ 1 , 2.5 , "a\nb" , -0 , 1e3 ] )").isOk());
  EXPECT_FALSE(tape.compact());
  EXPECT_EQ(tape[1].flags, TapeNode::kIsInteger);
  EXPECT_EQ(tape[2].flags, 0);
  EXPECT_EQ(tape[3].flags, TapeNode::kHasEscape);
  EXPECT_EQ(tape[4].flags, TapeNode::kIsInteger);
  EXPECT_EQ(tape[5].flags, 0);
}

TEST(JsonTape, ScalarRoots) {
  for (const char* text : {"0", "-1.5e-3", "\"s\"", "true", "false", "null"}) {
    JsonTape tape;
    EXPECT_TRUE(tape.parse(text).isOk()) << text;
    EXPECT_EQ(tape.size(), 1u);
  }
}

TEST(JsonTape, RejectsInvalidJsonWithOffset) {
  struct Case {
    const char* text;
    const char* fragment;
  };
  const Case cases[] = {
      {"", "unexpected end of input"},   {"{", "expected a string as object key"},
      {"{\"a\" 1}", "expected ':'"},     {"[1,]", "expected a value"},
      {"[1 2]", "expected ',' or ']'"},  {"01", "leading zero"},
      {"1.", "digit after '.'"},         {"1e", "exponent"},
      {"-", "expected a digit"},         {"\"abc", "unterminated string"},
      {"\"a\\x\"", "invalid escape"},    {"\"\\u12g4\"", "four hex digits"},
      {"\"a\tb\"", "control character"}, {"tru", "invalid literal"},
      {"{} x", "after the JSON value"},  {"NaN", "unexpected character"},
      {"\"\xC3\x28\"", "invalid UTF-8"}, {"\"\xED\xA0\x80\"", "invalid UTF-8"},  // encoded surrogate
      {"\"\xC0\xAF\"", "invalid UTF-8"},                                         // overlong
  };
  for (const Case& c : cases) {
    JsonTape tape;
    const Status status = tape.parse(c.text);
    EXPECT_EQ(status.code(), ErrorCode::InvalidJson) << c.text;
    EXPECT_NE(status.message().find(c.fragment), std::string::npos) << c.text << " -> " << status.message();
    EXPECT_NE(status.message().find("at byte"), std::string::npos);
    EXPECT_TRUE(tape.empty());
  }
}

TEST(JsonTape, AcceptsValidUtf8) {
  JsonTape tape;
  EXPECT_TRUE(tape.parse("\"h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"").isOk());
}

TEST(JsonTape, EnforcesLimits) {
  ParseLimits limits;
  limits.maxDepth = 3;
  JsonTape tape;
  EXPECT_TRUE(tape.parse("[[[1]]]", limits).isOk());
  const Status deep = tape.parse("[[[[1]]]]", limits);
  EXPECT_EQ(deep.code(), ErrorCode::TooDeep);
  EXPECT_STREQ(deep.codeName(), "DELTACAST_TOO_DEEP");
  limits.maxBytes = 4;
  EXPECT_EQ(tape.parse("[1,2,3]", limits).code(), ErrorCode::TooLarge);
}

TEST(JsonTape, DeepNestingDoesNotOverflowTheStack) {
  std::string text(100000, '[');
  text.append(100000, ']');
  JsonTape tape;
  EXPECT_EQ(tape.parse(text).code(), ErrorCode::TooDeep);
}

TEST(JsonString, DecodesEscapes) {
  std::string out;
  decodeJsonString(R"("a\"b\\c\/d\n\u00e9\ud83d\ude00")", out);
  EXPECT_EQ(out, "a\"b\\c/d\n\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(JsonString, EscapesForJson) {
  std::string out;
  appendJsonEscaped(std::string("a\"b\\c\n\x01", 7), out);
  EXPECT_EQ(out, "a\\\"b\\\\c\\n\\u0001");
}

TEST(JsonString, Minifies) {
  std::string out;
  appendMinified(R"( { "a b" : [ 1 , "x y" ] } )", out);
  EXPECT_EQ(out, R"({"a b":[1,"x y"]})");
}

TEST(JsonTape, RefusesDuplicateMemberNames) {
  auto code = [](const std::string& text) {
    JsonTape tape;
    return tape.parse(text).code();
  };
  EXPECT_EQ(code(R"({"a":1,"a":2})"), ErrorCode::InvalidJson);
  EXPECT_EQ(code(R"({"a":1,"\u0061":2})"), ErrorCode::InvalidJson);  // the same name, escaped
  EXPECT_EQ(code(R"({"x":{"b":1,"c":2,"b":3}})"), ErrorCode::InvalidJson);
  EXPECT_EQ(code(R"([{"id":1},{"id":2,"v":1,"id":3}])"), ErrorCode::InvalidJson);
  EXPECT_EQ(code(R"({"a":{"a":1},"b":{"a":2},"c":[{"a":1},{"a":1}]})"), ErrorCode::Ok);  // one per object is fine
  EXPECT_EQ(code(R"({"a":1,"A":2,"a\u0000":3,"\u00e9":4,"é ":5})"), ErrorCode::Ok);
  // Large objects go through the hash set: a repeat of an early name, plain or escaped.
  std::string big = "{";
  for (int i = 0; i < 100; ++i)
    big += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\":" + std::to_string(i);
  EXPECT_EQ(code(big + "}"), ErrorCode::Ok);
  EXPECT_EQ(code(big + R"(,"k3":0})"), ErrorCode::InvalidJson);
  EXPECT_EQ(code(big + R"(,"k\u0033":0})"), ErrorCode::InvalidJson);
  EXPECT_EQ(code(big + R"(,"k100":0})"), ErrorCode::Ok);
  JsonTape tape;
  const Status status = tape.parse(R"({"a":1, "a":2})");
  EXPECT_NE(status.message().find("duplicate member name"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("byte 8"), std::string::npos) << status.message();
  EXPECT_TRUE(tape.empty());
}

TEST(JsonTape, RefusesDuplicateMemberNamesWithAGuide) {
  const std::string old = R"({"rows":[{"id":1,"v":1},{"id":2,"v":2}],"x":1})";
  JsonTape guide;
  ASSERT_TRUE(guide.parse(old).isOk());
  JsonTape tape;
  EXPECT_EQ(tape.parse(R"({"rows":[{"id":1,"v":1},{"id":2,"v":2}],"x":1,"x":2})", {}, &guide).code(),
            ErrorCode::InvalidJson);
  EXPECT_EQ(tape.parse(R"({"rows":[{"id":1,"v":1},{"id":2,"v":2,"v":3}],"x":1})", {}, &guide).code(),
            ErrorCode::InvalidJson);
  EXPECT_TRUE(tape.parse(old, {}, &guide).isOk());
}

// ---- guided parsing: runs of unchanged elements --------------------------------

// The guided tape must be node for node the tape of a plain parse.
void expectSameAsPlain(const std::string& guideText, const std::string& text, const std::string& context) {
  JsonTape guide;
  JsonTape plain;
  JsonTape guided;
  ASSERT_TRUE(guide.parse(guideText).isOk()) << guideText;
  const Status plainStatus = plain.parse(text);
  const Status guidedStatus = guided.parse(text, {}, &guide);
  ASSERT_EQ(plainStatus.code(), guidedStatus.code()) << context << "\n" << text;
  ASSERT_EQ(plainStatus.message(), guidedStatus.message()) << context << "\n" << text;
  if (!plainStatus) return;
  EXPECT_EQ(plain.compact(), guided.compact()) << context;
  ASSERT_EQ(plain.size(), guided.size()) << context << "\n" << text;
  for (std::uint32_t i = 0; i < plain.size(); ++i) {
    ASSERT_EQ(plain[i].begin, guided[i].begin) << context << " node " << i;
    ASSERT_EQ(plain[i].end, guided[i].end) << context << " node " << i;
    ASSERT_EQ(plain[i].next, guided[i].next) << context << " node " << i;
    ASSERT_EQ(plain[i].count, guided[i].count) << context << " node " << i;
    ASSERT_EQ(plain[i].type, guided[i].type) << context << " node " << i;
    ASSERT_EQ(plain[i].flags, guided[i].flags) << context << " node " << i;
  }
}

// Arrays of scalars and rows whose elements are edited the ways that shift
// spans: changed, inserted, deleted, moved, numbers lengthened or shortened
// (a prefix of the guide's number), strings gaining an escape, whitespace
// added, and a broken tail.
class ArrayEdits {
 public:
  explicit ArrayEdits(unsigned seed) : rng_(seed) {}

  std::string element() {
    switch (pick(7)) {
      case 0: return std::to_string(pick(1000));
      case 1: return "-" + std::to_string(pick(100)) + "." + std::to_string(pick(10));
      case 2: return "\"s" + std::to_string(pick(50)) + (pick(4) == 0 ? "\\n\"" : "\"");
      case 3: return pick(2) ? "true" : "null";
      case 4: return "[" + std::to_string(pick(9)) + ",[" + std::to_string(pick(9)) + "]]";
      default:
        return "{\"id\":" + std::to_string(pick(40)) + ",\"p\":" + std::to_string(pick(100)) + ",\"t\":[" +
               std::to_string(pick(5)) + "],\"o\":{\"q\":\"" + std::to_string(pick(9)) + "\"}}";
    }
  }

  std::vector<std::string> elements(std::size_t n) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(element());
    return out;
  }

  void edit(std::vector<std::string>& v) {
    const std::size_t edits = 1 + pick(4);
    for (std::size_t e = 0; e < edits; ++e) {
      const std::size_t at = v.empty() ? 0 : pick(static_cast<unsigned>(v.size()));
      switch (pick(7)) {
        case 0:
          if (!v.empty()) v[at] = element();
          break;
        case 1: v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), element()); break;
        case 2:
          if (!v.empty()) v.erase(v.begin() + static_cast<std::ptrdiff_t>(at));
          break;
        case 3:
          if (v.size() > 1) {
            std::string row = v[at];
            v.erase(v.begin() + static_cast<std::ptrdiff_t>(at));
            v.insert(v.begin() + static_cast<std::ptrdiff_t>(pick(static_cast<unsigned>(v.size()))), row);
          }
          break;
        case 4:  // a number (or any element) lengthened: the guide's text is a prefix
          if (!v.empty() && !v[at].empty() && v[at].back() >= '0' && v[at].back() <= '9') v[at] += "7";
          break;
        case 5:  // shortened: this text is a prefix of the guide's
          if (!v.empty() && v[at].size() > 1 && v[at].back() >= '0' && v[at].back() <= '9') v[at].pop_back();
          break;
        default:
          if (!v.empty()) v[at] = "\"e\\u00e9" + std::to_string(pick(9)) + "\"";
          break;
      }
    }
  }

  std::string render(const std::vector<std::string>& v, bool spaces) {
    std::string out = spaces && pick(2) ? "[ " : "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += spaces && pick(3) == 0 ? " , " : ",";
      out += v[i];
    }
    return out + "]";
  }

  unsigned pick(unsigned n) { return std::uniform_int_distribution<unsigned>(0, n - 1)(rng_); }

 private:
  std::mt19937 rng_;
};

TEST(JsonTape, GuidedRunsOnShiftedSpansEqualPlainParse) {
  for (unsigned seed = 1; seed <= 3000; ++seed) {
    ArrayEdits gen(seed);
    std::vector<std::string> before = gen.elements(gen.pick(30));
    std::vector<std::string> after = before;
    gen.edit(after);
    const std::string context = "seed " + std::to_string(seed);
    const std::string guideText = gen.render(before, false);
    const bool spaces = gen.pick(4) == 0;
    std::string text = gen.render(after, spaces);
    // Nested: the same array as a member and inside an outer array.
    expectSameAsPlain(guideText, text, context);
    expectSameAsPlain(R"({"a":)" + guideText + R"(,"b":[)" + guideText + "]}",
                      R"({"a":)" + text + R"(,"b":[)" + text + "]}", context + " nested");
    // Broken texts fail with the same error as a plain parse.
    switch (gen.pick(4)) {
      case 0: text.pop_back(); break;
      case 1: text.insert(text.size() - 1, ","); break;
      case 2: text += "x"; break;
      default: text.insert(gen.pick(static_cast<unsigned>(text.size())), "}"); break;
    }
    expectSameAsPlain(guideText, text, context + " broken");
    if (HasFailure()) break;
  }
}

TEST(JsonTape, GuidedRunsStopAtANumberThatGoesOn) {
  // The guide's "12" is a prefix of "123": the run stops before it.
  expectSameAsPlain("[1,2,12]", "[1,2,123]", "lengthened");
  expectSameAsPlain("[1,2,123]", "[1,2,12]", "shortened");
  expectSameAsPlain("[1,2,3]", "[1,2,3,4]", "appended");
  expectSameAsPlain("[1,2,3,4]", "[1,2,3]", "cut");
  expectSameAsPlain("[[1],[2]]", "[[1],[2],[3]]", "rows appended");
  expectSameAsPlain("[1,2]", "[1,2 ]", "space before the bracket");
  expectSameAsPlain("[1,2]", "[1,2", "unterminated");
  // A guide with whitespace is not used: the tape still says exactly whether the text is compact.
  expectSameAsPlain(R"([ {"a":1}, [2] ])", R"([{"a":1},[2]])", "spaced guide");
  expectSameAsPlain(R"([ {"a":1}, [2] ])", R"([{"a":1}, [2]])", "spaced guide and text");
}

}  // namespace
}  // namespace deltacast
