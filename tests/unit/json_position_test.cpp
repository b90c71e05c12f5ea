// Positions in a JSON text: pointers to offsets, duplicate keys, line and column of an offset, and the offset of a
// syntax error nlohmann reports.
#include "common/json_position.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace podid {
namespace {

TEST(JsonPosition, OffsetsOfMembersAndElements) {
    const std::string text = "{\"a\": [10, {\"b\": \"x\"}],\n \"c~/d\": null}";
    JsonPositions p = locate_json_values(text, 8);
    EXPECT_FALSE(p.duplicate);
    struct Row {
        std::string pointer;
        std::size_t offset;
    };
    const std::vector<Row> rows = {
        {"/a", text.find("\"a\"")},  // a member: its key
        {"/a/0", text.find("10")},   // an element: its value
        {"/a/1", text.find("{\"b\"")},      {"/a/1/b", text.find("\"b\"")},
        {"/c~0~1d", text.find("\"c~/d\"")},  // the key escaped as a JSON pointer writes it
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.pointer);
        ASSERT_EQ(p.offsets.count(row.pointer), 1u);
        EXPECT_EQ(p.offset_of(row.pointer), row.offset);
    }
    EXPECT_EQ(p.offsets.size(), rows.size());
    EXPECT_EQ(p.offset_of("/nope"), 0u);
}

TEST(JsonPosition, EscapedKeysAndBracketsInStrings) {
    const std::string text = R"({"k\u0065y": "]}[{", "n": {"x]": 1}})";
    JsonPositions p = locate_json_values(text, 8);
    EXPECT_EQ(p.offset_of("/key"), 1u);  // the decoded key names the member
    EXPECT_EQ(p.offset_of("/n"), text.find("\"n\""));
    EXPECT_EQ(p.offset_of("/n/x]"), text.find("\"x]\""));
}

TEST(JsonPosition, DuplicateKeyIsTheFirstRepeated) {
    const std::string text = "{\"a\": {\"x\": 1, \"x\": 2, \"y\": 3, \"y\": 4}, \"a\": 5}";
    JsonPositions p = locate_json_values(text, 8);
    ASSERT_TRUE(p.duplicate);
    EXPECT_EQ(p.duplicate->first, "/a/x");
    EXPECT_EQ(p.duplicate->second, text.find("\"x\": 2"));
    // The same key in sibling objects is no duplicate.
    EXPECT_FALSE(locate_json_values(R"([{"x": 1}, {"x": 2}])", 8).duplicate);
}

TEST(JsonPosition, DeeperContainersAreSkippedWhole) {
    const std::string text = R"({"a": {"b": {"c": 1, "c": 2}}, "d": [1]})";
    JsonPositions p = locate_json_values(text, 2);
    EXPECT_EQ(p.offsets.count("/a/b"), 1u);
    EXPECT_EQ(p.offsets.count("/a/b/c"), 0u);
    EXPECT_FALSE(p.duplicate);  // not looked at
    EXPECT_EQ(p.offset_of("/d"), text.find("\"d\""));
    EXPECT_EQ(p.offset_of("/d/0"), text.rfind('1'));
}

TEST(JsonPosition, TruncatedTextGivesWhatItCould) {
    const std::string text = "{\"a\": [1, {\"b\": \"unterminated";
    JsonPositions p = locate_json_values(text, 8);
    EXPECT_EQ(p.offset_of("/a/1/b"), text.find("\"b\""));
    EXPECT_TRUE(locate_json_values("", 8).offsets.empty());
}

TEST(JsonPosition, LineAndColumn) {
    const std::string text = "ab\n\ncdef\nx";
    struct Row {
        std::size_t offset;
        int line;
        int column;
    };
    const std::vector<Row> rows = {
        {0, 1, 1},   {1, 1, 2}, {2, 1, 3},                         // the newline itself is at the end of its line
        {3, 2, 1},   {4, 3, 1}, {7, 3, 4}, {9, 4, 1}, {10, 4, 2},  // the end of the text
        {999, 4, 2},                                               // clamped
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.offset);
        TextPosition at = text_position(text, row.offset);
        EXPECT_EQ(at.line, row.line);
        EXPECT_EQ(at.column, row.column);
    }
}

TEST(JsonPosition, SyntaxErrorOnLineNColumnM) {
    struct Row {
        const char* name;
        std::string text;
        int line;
        int column;
    };
    const std::vector<Row> rows = {
        {"bad_literal", "{\n  \"a\": tru }", 2, 10},  // the last character read, not the blank after it
        {"double_comma", "[1,\n\n   2,, 3]", 3, 6},
        {"truncated", "{\"a\": [1,\n  ", 1, 9},  // end of input: back to the last token, the comma
        {"empty", "", 1, 1},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(std::string(row.name) + "\n" + row.text);
        std::size_t byte = 0;
        try {
            FAIL() << "parsed: " << nlohmann::json::parse(row.text).dump();
        } catch (const nlohmann::json::parse_error& e) {
            byte = e.byte;
        }
        TextPosition at = text_position(row.text, json_syntax_error_offset(row.text, byte));
        EXPECT_EQ(at.line, row.line);
        EXPECT_EQ(at.column, row.column);
    }
}

TEST(JsonPosition, PointerEscape) {
    EXPECT_EQ(json_pointer_escape("plain"), "plain");
    EXPECT_EQ(json_pointer_escape("a/b~c"), "a~1b~0c");
    EXPECT_EQ(json_pointer_escape("~1"), "~01");
    EXPECT_EQ(json_pointer_escape(""), "");
}

}  // namespace
}  // namespace podid
