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

}  // namespace
}  // namespace deltacast
