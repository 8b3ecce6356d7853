#include "deltacast/json_tape.h"

#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace deltacast
