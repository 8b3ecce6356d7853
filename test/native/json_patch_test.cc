#include "deltacast/json_patch.h"

#include <gtest/gtest.h>

#include <string>

namespace deltacast {
namespace {

std::string apply(const std::string& doc, const std::string& ops) {
  std::string out;
  const Status status = applyPatchJson(doc, ops, out);
  EXPECT_TRUE(status.isOk()) << status.message();
  return out;
}

Status applyError(const std::string& doc, const std::string& ops) {
  std::string out;
  return applyPatchJson(doc, ops, out);
}

TEST(JsonPatch, AllSixOperations) {
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"add","path":"/b","value":[1,2]}])"), R"({"a":1,"b":[1,2]})");
  EXPECT_EQ(apply(R"({"a":[1,3]})", R"([{"op":"add","path":"/a/1","value":2}])"), R"({"a":[1,2,3]})");
  EXPECT_EQ(apply(R"({"a":[1]})", R"([{"op":"add","path":"/a/-","value":2}])"), R"({"a":[1,2]})");
  EXPECT_EQ(apply(R"({"a":1,"b":2,"c":3})", R"([{"op":"remove","path":"/b"}])"), R"({"a":1,"c":3})");
  EXPECT_EQ(apply(R"([1,2,3])", R"([{"op":"remove","path":"/0"}])"), "[2,3]");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"replace","path":"/a","value":{"x":null}}])"), R"({"a":{"x":null}})");
  EXPECT_EQ(apply(R"({"a":1})", R"([{"op":"replace","path":"","value":[true]}])"), "[true]");
  EXPECT_EQ(apply(R"([1,2,3,4])", R"([{"op":"move","from":"/0","path":"/3"}])"), "[2,3,4,1]");
  EXPECT_EQ(apply(R"({"a":{"b":1},"c":{}})", R"([{"op":"move","from":"/a/b","path":"/c/d"}])"),
            R"({"a":{},"c":{"d":1}})");
  EXPECT_EQ(apply(R"({"a":[1,2]})", R"([{"op":"copy","from":"/a","path":"/b"},{"op":"add","path":"/b/-","value":3}])"),
            R"({"a":[1,2],"b":[1,2,3]})");
  EXPECT_EQ(apply(R"({"a":{"x":1,"y":[1.0]}})", R"([{"op":"test","path":"/a","value":{"y":[1],"x":1}}])"),
            R"({"a":{"x":1,"y":[1.0]}})");
  EXPECT_EQ(apply(R"({"a/b":{"m~n":1}})", R"([{"op":"replace","path":"/a~1b/m~0n","value":2}])"),
            R"({"a/b":{"m~n":2}})");
}

TEST(JsonPatch, ErrorsHaveStableCodesAndSayWhere) {
  struct Case {
    const char* doc;
    const char* ops;
    ErrorCode code;
    const char* fragment;
  };
  const Case cases[] = {
      {"{}", R"({"op":"add"})", ErrorCode::InvalidPatch, "array of operations"},
      {"{}", R"([1])", ErrorCode::InvalidPatch, "must be an object"},
      {"{}", R"([{"op":"jump","path":"/a"}])", ErrorCode::InvalidPatch, "unknown op \"jump\""},
      {"{}", R"([{"path":"/a"}])", ErrorCode::InvalidPatch, "\"op\""},
      {"{}", R"([{"op":"add","value":1}])", ErrorCode::InvalidPatch, "missing \"path\""},
      {"{}", R"([{"op":"add","path":"/a"}])", ErrorCode::InvalidPatch, "missing \"value\""},
      {"{}", R"([{"op":"add","path":"a","value":1}])", ErrorCode::InvalidPointer, "must be empty or start with '/'"},
      {"{}", R"([{"op":"add","path":"/a~2","value":1}])", ErrorCode::InvalidPointer, "'~'"},
      {"{}", R"([{"op":"remove","path":"/a"}])", ErrorCode::PathNotFound, "no member \"a\""},
      {"{}", R"([{"op":"add","path":"/a/b","value":1}])", ErrorCode::PathNotFound, "no member \"a\""},
      {"[1,2]", R"([{"op":"remove","path":"/2"}])", ErrorCode::PathNotFound,
       "index 2 is out of range (array length 2)"},
      {"[1,2]", R"([{"op":"add","path":"/3","value":0}])", ErrorCode::PathNotFound, "out of range"},
      {"[1,2]", R"([{"op":"replace","path":"/01","value":0}])", ErrorCode::PathNotFound, "not an array index"},
      {"[1,2]", R"([{"op":"replace","path":"/-","value":0}])", ErrorCode::PathNotFound, "not an array index"},
      {"{\"a\":1}", R"([{"op":"add","path":"/a/b","value":0}])", ErrorCode::PathNotFound, "not a container"},
      {"{\"a\":1}", R"([{"op":"test","path":"/a","value":2}])", ErrorCode::PatchTestFailed, "not the expected value"},
      {"{\"a\":{}}", R"([{"op":"move","from":"/a","path":"/a/b"}])", ErrorCode::InvalidPatch, "own child"},
      {"{}", R"([{"op":"remove","path":""}])", ErrorCode::InvalidPatch, "whole document"},
      {"{}", R"([{"op":"copy","path":"/b"}])", ErrorCode::InvalidPatch, "missing \"from\""},
      {"{}", R"([{"op":"add","path":5,"value":1}])", ErrorCode::InvalidPatch, "\"path\" must be a string"},
      {"{}", R"([{"op":"copy","from":-1,"path":"/b"}])", ErrorCode::InvalidPatch, "\"from\" must be a string"},
      {"{}", R"([{"op":1e400,"path":"/b"}])", ErrorCode::InvalidPatch, "non-string \"op\""},
  };
  for (const Case& c : cases) {
    const Status status = applyError(c.doc, c.ops);
    EXPECT_EQ(status.code(), c.code) << c.ops << " -> " << status.message();
    EXPECT_NE(status.message().find(c.fragment), std::string::npos) << c.ops << " -> " << status.message();
  }
  const Status status = applyError("{}", R"([{"op":"add","path":"/a","value":1},{"op":"remove","path":"/x"}])");
  EXPECT_EQ(status.message().rfind("operation 1 (remove):", 0), 0u) << status.message();
}

TEST(JsonPatch, FailureRollsBackEveryStep) {
  const std::string original = R"({"a":{"x":1,"y":2,"z":3},"list":[1,2,3,4],"keep":"k"})";
  rapidjson::Document doc;
  ASSERT_TRUE(parseDocument(original, doc).isOk());
  rapidjson::Document ops;
  ops.Parse(R"([
    {"op":"remove","path":"/a/x"},
    {"op":"add","path":"/a/new","value":{"deep":[1]}},
    {"op":"replace","path":"/a/y","value":"changed"},
    {"op":"remove","path":"/list/1"},
    {"op":"add","path":"/list/0","value":0},
    {"op":"move","from":"/list/3","path":"/moved"},
    {"op":"copy","from":"/a","path":"/list/-"},
    {"op":"replace","path":"/list/0","value":"zero"},
    {"op":"add","path":"/keep","value":"overwritten"},
    {"op":"replace","path":"","value":[]},
    {"op":"add","path":"/0","value":1},
    {"op":"test","path":"/0","value":2}
  ])");
  const Status status = applyPatch(doc, ops);
  EXPECT_EQ(status.code(), ErrorCode::PatchTestFailed);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  EXPECT_EQ(std::string(buffer.GetString()), original);  // member order included
}

TEST(JsonPatch, RejectsInvalidDocumentText) {
  std::string out;
  const Status status = applyPatchJson("{", "[]", out);
  EXPECT_EQ(status.code(), ErrorCode::InvalidJson);
  EXPECT_EQ(status.message().rfind("document:", 0), 0u);
}

TEST(JsonPatch, UntouchedNumbersKeepTheirText) {
  // Numbers a double cannot hold, and texts a double would rewrite.
  const char* numbers[] = {"1e400",
                           "-1e400",
                           "1e-400",
                           "18446744073709551616",
                           "123456789012345678901234567890",
                           "1.0",
                           "1E2",
                           "-0",
                           "0.1000",
                           "9007199254740993",
                           "2.5e-0010",
                           "-0.0"};
  for (const char* number : numbers) {
    const std::string doc = std::string(R"({"v":)") + number + R"(,"w":[)" + number + "]}";
    EXPECT_EQ(deltacast::apply(doc, "[]"), doc);
    EXPECT_EQ(deltacast::apply(doc, R"([{"op":"add","path":"/x","value":1}])"),
              std::string(R"({"v":)") + number + R"(,"w":[)" + number + R"(],"x":1})");
    EXPECT_EQ(deltacast::apply(doc, R"([{"op":"move","from":"/v","path":"/m"},{"op":"copy","from":"/w","path":"/c"}])"),
              std::string(R"({"w":[)") + number + R"(],"m":)" + number + R"(,"c":[)" + number + "]}");
  }
  // Values a patch carries are written as the patch gives them.
  EXPECT_EQ(
      apply(R"({"v":1})", R"([{"op":"replace","path":"/v","value":1e400},{"op":"add","path":"/w","value":1.50}])"),
      R"({"v":1e400,"w":1.50})");
  EXPECT_EQ(apply("1e400", R"([{"op":"replace","path":"","value":123456789012345678901234567890}])"),
            "123456789012345678901234567890");
}

TEST(JsonPatch, TestComparesNumbersByValue) {
  EXPECT_EQ(apply(R"({"v":1.0})", R"([{"op":"test","path":"/v","value":1}])"), R"({"v":1.0})");
  EXPECT_EQ(apply(R"({"v":[100]})", R"([{"op":"test","path":"/v","value":[1e2]}])"), R"({"v":[100]})");
  EXPECT_EQ(apply(R"({"v":-0})", R"([{"op":"test","path":"/v","value":0}])"), R"({"v":-0})");
  EXPECT_EQ(apply(R"({"v":1e400})", R"([{"op":"test","path":"/v","value":1e400}])"), R"({"v":1e400})");
  // Integers beyond double precision compare exactly.
  EXPECT_EQ(
      applyError(R"({"v":18446744073709551617})", R"([{"op":"test","path":"/v","value":18446744073709551616}])").code(),
      ErrorCode::PatchTestFailed);
  EXPECT_EQ(applyError(R"({"v":1})", R"([{"op":"test","path":"/v","value":"1"}])").code(), ErrorCode::PatchTestFailed);
  EXPECT_EQ(applyError(R"({"v":{"a":1,"b":2}})", R"([{"op":"test","path":"/v","value":{"a":1,"c":2}}])").code(),
            ErrorCode::PatchTestFailed);
}

// Out of a double's range a number compares as JSON.parse reads it (0, or
// +-Infinity kept finite), in the text form (numbers held as text) and the
// document form alike: a fuzz finding had 5e-333333334333 equal to 0 in one
// form only.
TEST(JsonPatch, TestComparesNumbersBeyondADoubleAlikeInBothForms) {
  struct Case {
    const char* left;
    const char* right;
    bool equal;
  };
  const std::string nines(400, '9');
  const std::string big = "1" + std::string(400, '0');
  const Case cases[] = {
      {"5e-333333334333", "0", true}, {"5e-400", "0", true},
      {"-5e-400", "0", true},         {"0.000e-99999999999999999999", "0", true},
      {"1e400", "2e400", true},       {"-1e400", "-2E+400", true},
      {"1e400", "-1e400", false},     {big.c_str(), "1e400", true},  // 401 digits, no exponent: beyond the top, not 0
      {nines.c_str(), "0", false},    {"0.1e-400", "1e-401", true},
      {"1e400", "1e308", false},      {"1e-400", "1e-300", false},
  };
  for (const Case& c : cases) {
    const std::string doc = std::string(R"({"v":)") + c.left + "}";
    const std::string ops = std::string(R"([{"op":"test","path":"/v","value":)") + c.right + "}]";
    std::string out;
    const Status text = applyPatchJson(doc, ops, out);
    EXPECT_EQ(text.isOk(), c.equal) << c.left << " vs " << c.right << ": " << text.message();
    rapidjson::Document document;
    rapidjson::Document patch;
    ASSERT_TRUE(parseDocument(doc, document).isOk());
    ASSERT_TRUE(parseDocument(ops, patch).isOk());
    const Status parsed = applyPatch(document, patch);
    EXPECT_EQ(parsed.isOk(), c.equal) << c.left << " vs " << c.right << " (document form): " << parsed.message();
  }
}

TEST(JsonPatch, SizeLimitHoldsWhileApplying) {
  // Each copy of the whole document into itself doubles it: 60 of them would
  // need 2^60 times the document if the result were built before the check.
  std::string ops = "[";
  for (int i = 0; i < 60; ++i)
    ops += std::string(i ? "," : "") + R"({"op":"copy","from":"","path":"/c)" + std::to_string(i) + "\"}";
  ops += "]";
  const std::string doc = R"({"pad":")" + std::string(1000, 'x') + "\"}";
  PatchLimits limits;
  limits.value.maxBytes = 100000;
  std::string out = "untouched";
  const Status status = applyPatchJson(doc, ops, out, limits);
  EXPECT_EQ(status.code(), ErrorCode::TooLarge) << status.message();
  EXPECT_NE(status.message().find("operation 6 (copy)"), std::string::npos) << status.message();
  EXPECT_EQ(out, "untouched");
  // With the default limit (64 MiB) it fails the same way, after 16 copies.
  const Status large = applyPatchJson(doc, ops, out);
  EXPECT_EQ(large.code(), ErrorCode::TooLarge) << large.message();
  // The limit is on the compact result: exactly at it passes, one byte over fails.
  const std::string small = R"({"a":"xx"})";  // 10 bytes; + ,"b":"xx" = 19
  limits.value.maxBytes = 19;
  EXPECT_TRUE(applyPatchJson(small, R"([{"op":"copy","from":"/a","path":"/b"}])", out, limits).isOk());
  EXPECT_EQ(out, R"({"a":"xx","b":"xx"})");
  limits.value.maxBytes = 18;
  EXPECT_EQ(applyPatchJson(small, R"([{"op":"copy","from":"/a","path":"/b"}])", out, limits).code(),
            ErrorCode::TooLarge);
  // Removing first makes room: the size is tracked exactly, both ways.
  EXPECT_TRUE(
      applyPatchJson(small, R"([{"op":"remove","path":"/a"},{"op":"add","path":"/b","value":"xxxxxx"}])", out, limits)
          .isOk());
  EXPECT_EQ(out, R"({"b":"xxxxxx"})");
}

TEST(JsonPatch, DepthLimitHoldsWhileApplying) {
  PatchLimits limits;
  limits.value.maxDepth = 4;
  std::string out;
  // [] nests one level deeper with every copy of itself into itself.
  const std::string ops = R"([{"op":"copy","from":"","path":"/-"},{"op":"copy","from":"","path":"/-"},)"
                          R"({"op":"copy","from":"","path":"/-"},{"op":"copy","from":"","path":"/-"}])";
  const Status status = applyPatchJson("[]", ops, out, limits);
  EXPECT_EQ(status.code(), ErrorCode::TooDeep) << status.message();
  EXPECT_NE(status.message().find("operation 3 (copy)"), std::string::npos) << status.message();
  EXPECT_TRUE(applyPatchJson("[]", R"([{"op":"add","path":"/0","value":[[[]]]}])", out, limits).isOk());
  EXPECT_EQ(applyPatchJson("[]", R"([{"op":"add","path":"/0","value":[[[[]]]]}])", out, limits).code(),
            ErrorCode::TooDeep);
  EXPECT_EQ(applyPatchJson(R"({"a":{"b":{}}})", R"([{"op":"move","from":"/a","path":"/a/b/c"}])", out, limits).code(),
            ErrorCode::InvalidPatch);
  EXPECT_EQ(applyPatchJson(R"({"a":{"b":{}},"x":[[]]})", R"([{"op":"move","from":"/x","path":"/a/b/c"}])", out, limits)
                .code(),
            ErrorCode::TooDeep);
}

TEST(JsonPatch, MaxOpsIsCheckedBeforeApplying) {
  PatchLimits limits;
  limits.maxOps = 3;
  std::string out;
  const std::string three =
      R"([{"op":"add","path":"/a","value":1},{"op":"add","path":"/b","value":2},{"op":"add","path":"/c","value":3}])";
  EXPECT_TRUE(applyPatchJson("{}", three, out, limits).isOk());
  const std::string four = three.substr(0, three.size() - 1) + R"(,{"op":"bad"}])";
  const Status status = applyPatchJson("{}", four, out, limits);
  EXPECT_EQ(status.code(), ErrorCode::TooManyOps) << status.message();
  EXPECT_STREQ(status.codeName(), "DELTACAST_TOO_MANY_OPS");
  EXPECT_EQ(PatchLimits{}.maxOps, 10000u);
}

TEST(JsonPatch, LargeObjectsStayConsistentThroughTheMemberIndex) {
  // 200 members (indexed), then adds, removes at the end and in the middle,
  // moves and copies; every member is then looked up by a test.
  std::string doc = "{";
  for (int i = 0; i < 200; ++i)
    doc += std::string(i ? "," : "") + "\"k" + std::to_string(i) + "\":" + std::to_string(i);
  doc += "}";
  std::string ops = "[";
  for (int i = 200; i < 400; ++i)
    ops += R"({"op":"add","path":"/k)" + std::to_string(i) + R"(","value":)" + std::to_string(i) + "},";
  ops += R"({"op":"remove","path":"/k399"},{"op":"remove","path":"/k100"},{"op":"add","path":"/k100","value":-100},)";
  ops += R"({"op":"move","from":"/k0","path":"/moved"},{"op":"copy","from":"/k5","path":"/k0"},)";
  ops += R"({"op":"replace","path":"/k300","value":"r"},{"op":"add","path":"/k301","value":"a"},)";
  ops += R"({"op":"test","path":"/k100","value":-100},{"op":"test","path":"/moved","value":0},)";
  ops +=
      R"({"op":"test","path":"/k0","value":5},{"op":"test","path":"/k300","value":"r"},{"op":"test","path":"/k301","value":"a"},)";
  for (int i = 1; i < 399; ++i) {
    if (i == 100 || i == 300 || i == 301) continue;
    ops += R"({"op":"test","path":"/k)" + std::to_string(i) + R"(","value":)" + std::to_string(i) + "},";
  }
  ops += R"({"op":"remove","path":"/k399"}])";  // gone: fails, and everything is rolled back
  rapidjson::Document parsed;
  ASSERT_TRUE(parseDocument(doc, parsed, {}, Numbers::AsText).isOk());
  rapidjson::Document opsDoc;
  ASSERT_TRUE(parseDocument(ops, opsDoc, {}, Numbers::AsText).isOk());
  const Status status = applyPatch(parsed, opsDoc);
  EXPECT_EQ(status.code(), ErrorCode::PathNotFound) << status.message();
  EXPECT_NE(status.message().find("k399"), std::string::npos) << status.message();
  std::string after;
  serializeDocument(parsed, after);
  EXPECT_EQ(after, doc);  // member order included
  // Without the failing last operation it applies.
  const std::string good = ops.substr(0, ops.rfind(",{")) + "]";
  std::string out;
  ASSERT_TRUE(applyPatchJson(doc, good, out).isOk());
  EXPECT_NE(out.find(R"("k100":-100,"moved":0,"k0":5})"), std::string::npos);
}

TEST(JsonPatch, ManyAddsToOneObject) {
  // Correctness of the linear path (timing is in bench/patch-worst.js).
  std::string ops = "[";
  for (int i = 0; i < 9998; ++i)
    ops += std::string(i ? "," : "") + R"({"op":"add","path":"/m)" + std::to_string(i) + R"(","value":0})";
  ops += R"(,{"op":"add","path":"/m0","value":1},{"op":"test","path":"/m9997","value":0}])";
  std::string out;
  ASSERT_TRUE(applyPatchJson("{}", ops, out).isOk());
  std::string expected = R"({"m0":1)";
  for (int i = 1; i < 9998; ++i) expected += R"(,"m)" + std::to_string(i) + R"(":0)";
  expected += "}";
  EXPECT_EQ(out, expected);
}

TEST(JsonPatch, DuplicateNamesAreRefusedInDocumentsAndValues) {
  EXPECT_EQ(applyError(R"({"a":1,"a":2})", "[]").code(), ErrorCode::InvalidJson);
  EXPECT_EQ(applyError("{}", R"([{"op":"add","path":"/v","value":{"x":1,"x":2}}])").code(), ErrorCode::InvalidJson);
  EXPECT_EQ(applyError("{}", R"([{"op":"add","path":"/v","value":1,"value":2}])").code(), ErrorCode::InvalidJson);
}

TEST(JsonPatch, MovesRollBackExactly) {
  // Moves hand their value over without a copy; a rollback must give each one
  // back to where it came from, whatever kind of place it went to.
  const std::string doc = R"({"a":{"x":[1,{"deep":true}],"y":2},"list":[10,20,30],"keep":"k"})";
  const std::string ops = R"([
    {"op":"move","from":"/a/x","path":"/list/1"},
    {"op":"move","from":"/list/0","path":"/keep"},
    {"op":"move","from":"/a/y","path":"/new"},
    {"op":"move","from":"/list/2","path":"/list/0"},
    {"op":"move","from":"/a","path":"/list/-"},
    {"op":"test","path":"/keep","value":11}
  ])";
  std::string out;
  const Status status = applyPatchJson(doc, ops, out);
  EXPECT_EQ(status.code(), ErrorCode::PatchTestFailed) << status.message();
  rapidjson::Document parsed;
  ASSERT_TRUE(parseDocument(doc, parsed, {}, Numbers::AsText).isOk());
  rapidjson::Document opsDoc;
  ASSERT_TRUE(parseDocument(ops, opsDoc, {}, Numbers::AsText).isOk());
  EXPECT_EQ(applyPatch(parsed, opsDoc).code(), ErrorCode::PatchTestFailed);
  std::string after;
  serializeDocument(parsed, after);
  EXPECT_EQ(after, doc);
  // And applied, they give what the JS applier gives.
  std::string good = ops;
  good.replace(good.find(R"("value":11)"), 10, R"("value":10)");
  ASSERT_TRUE(applyPatchJson(doc, good, out).isOk());
  EXPECT_EQ(out, R"({"list":[30,[1,{"deep":true}],20,{}],"keep":10,"new":2})");
  // A move to the root, rolled back.
  EXPECT_EQ(
      applyPatchJson(doc, R"([{"op":"move","from":"/a","path":""},{"op":"test","path":"/y","value":3}])", out).code(),
      ErrorCode::PatchTestFailed);
  ASSERT_TRUE(applyPatchJson(doc, R"([{"op":"move","from":"/a","path":""}])", out).isOk());
  EXPECT_EQ(out, R"({"x":[1,{"deep":true}],"y":2})");
}

TEST(JsonPatch, WorkOfOnePatchIsBounded) {
  // 10,000 copies of a ~600 KB subtree onto one member stay within the size
  // limit (each replaces the last) but would copy 6 GB: refused after a few.
  std::string rows = "[";
  for (int i = 0; i < 20000; ++i)
    rows += std::string(i ? "," : "") + R"({"id":)" + std::to_string(i) + R"(,"v":"row"})";
  rows += "]";
  const std::string doc = R"({"big":)" + rows + R"(,"x":0})";
  std::string ops = "[";
  for (int i = 0; i < 10000; ++i) ops += std::string(i ? "," : "") + R"({"op":"copy","from":"/big","path":"/x"})";
  ops += "]";
  std::string out = "untouched";
  const Status status = applyPatchJson(doc, ops, out);
  EXPECT_EQ(status.code(), ErrorCode::TooLarge) << status.message();
  EXPECT_NE(status.message().find("split it into smaller patches"), std::string::npos) << status.message();
  EXPECT_EQ(out, "untouched");
  // The same copy a few times is ordinary work.
  ASSERT_TRUE(
      applyPatchJson(doc, R"([{"op":"copy","from":"/big","path":"/x"},{"op":"copy","from":"/big","path":"/y"}])", out)
          .isOk());
  EXPECT_EQ(out.size(), doc.size() + rows.size() - 1 + rows.size() + 5);
}

}  // namespace
}  // namespace deltacast
