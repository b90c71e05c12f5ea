// The bindings file: parsing, validation and its error messages (line and column), and reading it.
#include "policy/static_bindings_file.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "static_bindings_fixtures.h"
#include "temp_dir.h"

namespace podid {
namespace {

using test::doc;
using test::entry;
using test::kArmId;
using test::kGuid1;
using test::kGuid2;
using test::TempDir;

struct ParseRow {
    const char* name;
    std::string json;
    bool ok;
    std::string fragment = {};  // expected in the error message
    int line = 0;               // expected line in "test.json:<line>:"
};

TEST(BindingsFileParse, Table) {
    const std::string ok_entry = entry("/a");
    const std::vector<ParseRow> table = {
        // valid documents
        {"two_entries",
         doc({entry("/system.slice/app.service"),
              entry("/kubepods.slice/*/kubepods-burstable-pod1234*.slice",
                    "{\"client_id\": \"" + kGuid1 + "\"}, {\"resource_id\": \"" + kArmId + "\", \"client_id\": \"" +
                        kGuid2 + "\", \"name\": \"x\"}")}),
         true},
        {"empty_list", "{\"bindings\": []}", true},
        {"msi_res_id_alias", doc({entry("/a", "{\"msi_res_id\": \"" + kArmId + "\"}")}), true},
        {"object_id_only", doc({entry("/a", "{\"object_id\": \"" + kGuid2 + "\"}")}), true},
        {"escaped_key", doc({entry("/a", "{\"client\\u005fid\": \"" + kGuid1 + "\"}")}), true},
        {"root_pattern", doc({entry("/")}), true},
        {"double_star", doc({entry("/kubepods.slice/**/cri-containerd-*.scope")}), true},
        {"class_and_escape", doc({entry("/a[0-9]/b\\\\*/[!x]c")}), true},
        // syntax errors: line and column of the offending token
        {"missing_comma", "{\"bindings\": [\n  " + ok_entry + "\n  " + ok_entry + "\n]}", false,
         "invalid JSON: syntax error", 3},
        {"bad_literal", "{\"bindings\": [\n  {\"cgroup\": tru}\n]}", false, "invalid literal", 2},
        {"trailing_comma", "{\"bindings\": [\n  " + ok_entry + ",\n]}", false, "invalid JSON", 3},
        {"truncated", "{\"bindings\": [\n  " + ok_entry + "\n", false, "unexpected end of input", 2},
        {"empty_file", "", false, "invalid JSON", 1},
        {"trailing_garbage", "{\"bindings\": []}\nx", false, "invalid JSON", 2},
        // document shape
        {"not_an_object", "[1, 2]", false, "must be an object", 1},
        {"unknown_top_key", "{\"bindings\": [],\n \"binding\": []}", false, "unknown key \"binding\"", 2},
        {"missing_bindings", "{}", false, "missing \"bindings\"", 1},
        {"bindings_not_list", "{\n\"bindings\": {}}", false, "\"bindings\" must be a list", 2},
        {"duplicate_key", doc({ok_entry, "{\"cgroup\": \"/a\", \"cgroup\": \"/b\", \"identities\": []}"}), false,
         "duplicate key \"cgroup\"", 3},
        // entries
        {"entry_not_object", doc({ok_entry, "\"/a\""}), false, "bindings entry 2: must be an object", 3},
        {"entry_unknown_key", doc({ok_entry, ok_entry, entry("/a").insert(1, "\"identity\": 1, ")}), false,
         "bindings entry 3: unknown key \"identity\"", 4},
        {"missing_cgroup", doc({"{\"identities\": [{\"client_id\": \"" + kGuid1 + "\"}]}"}), false,
         "bindings entry 1: missing \"cgroup\"", 2},
        {"cgroup_not_string", doc({ok_entry, "{\"cgroup\": 5, \"identities\": []}"}), false,
         "bindings entry 2: \"cgroup\" must be a string", 3},
        {"relative_pattern", doc({entry("kubepods.slice")}), false, "must be an absolute cgroup path", 2},
        {"double_star_in_segment", doc({entry("/kubepods.slice/a**")}), false, "\"**\" must be a whole path segment",
         2},
        {"dotdot", doc({entry("/a/../b")}), false, "\"..\" segments are not allowed", 2},
        {"empty_segment", doc({entry("/a//b")}), false, "empty path segment", 2},
        {"unclosed_class", doc({entry("/a[bc")}), false, "unclosed '['", 2},
        {"lone_backslash", doc({entry("/a\\\\")}), false, "lone backslash", 2},
        {"missing_identities", doc({"{\"cgroup\": \"/a\"}"}), false, "bindings entry 1: missing \"identities\"", 2},
        {"empty_identities", doc({entry("/a", "")}), false, "\"identities\" must be a non-empty list", 2},
        // identities
        {"identity_not_object", doc({entry("/a", "\"" + kGuid1 + "\"")}), false,
         "bindings entry 1: identity 1: must be an object", 2},
        {"identity_typo", doc({ok_entry, entry("/b", "{\"client_id\": \"" + kGuid1 + "\"}, {\"clientid\": \"x\"}")}),
         false, "bindings entry 2: identity 2: unknown key \"clientid\"", 3},
        {"bad_guid", doc({entry("/a", "{\"client_id\": \"1111-2222\"}")}), false,
         "client_id \"1111-2222\" is not a GUID", 2},
        {"bad_object_id", doc({entry("/a", "{\"object_id\": \"" + kGuid1 + "0\"}")}), false, "is not a GUID", 2},
        {"guid_not_string", doc({entry("/a", "{\"client_id\": 5}")}), false, "\"client_id\" must be a string", 2},
        {"name_only", doc({entry("/a", "{\"name\": \"x\"}")}), false, "needs at least one of client_id", 2},
        {"bad_resource_id", doc({entry("/a", "{\"resource_id\": \"/subscriptions/0/foo\"}")}), false,
         "is not a user-assigned identity id", 2},
        {"resource_id_twice",
         doc({entry("/a", "{\"resource_id\": \"" + kArmId + "\", \"msi_res_id\": \"" + kArmId + "\"}")}), false,
         "not both", 2},
    };
    for (const auto& row : table) {
        SCOPED_TRACE(std::string(row.name) + "\n" + row.json);
        auto parsed = parse_bindings_file(row.json, "test.json");
        ASSERT_EQ(parsed.ok(), row.ok) << (parsed.ok() ? "parsed" : parsed.error().message);
        if (row.ok)
            continue;
        const std::string& msg = parsed.error().message;
        EXPECT_NE(msg.find(row.fragment), std::string::npos) << msg;
        EXPECT_EQ(msg.rfind("test.json:" + std::to_string(row.line) + ":", 0), 0u) << msg;
        EXPECT_EQ(parsed.error().code, EINVAL);
    }
}

TEST(BindingsFileParse, ColumnPointsAtTheToken) {
    auto parsed = parse_bindings_file("{\"bindings\": [\n  {\"cgroup\": \"/a\",, }\n]}", "f");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().message.rfind("f:2:19: ", 0), 0u) << parsed.error().message;

    parsed = parse_bindings_file(doc({entry("/a"), entry("/a", "{\"client_id\": \"x\"}")}), "f");
    ASSERT_FALSE(parsed.ok());
    // the key of the bad value: line 3, after "  {"cgroup": "/a", "identities": [{"
    EXPECT_EQ(parsed.error().message.rfind("f:3:36: ", 0), 0u) << parsed.error().message;
}

TEST(BindingsFileParse, ValuesAndDefaults) {
    auto parsed = parse_bindings_file(
        doc({entry("/a", "{\"client_id\": \"" + std::string("AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE") +
                             "\"}, {\"msi_res_id\": \"" + kArmId + "\", \"name\": \"second\"}")}),
        "f");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    const auto& entries = (*parsed)->entries();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].line, 2);
    ASSERT_EQ(entries[0].identities.size(), 2u);
    EXPECT_EQ(entries[0].identities[0].client_id, kGuid2);  // GUIDs lower-cased
    EXPECT_EQ(entries[0].identities[0].name, "bindings entry 1");
    EXPECT_EQ(entries[0].identities[1].resource_id, kArmId);
    EXPECT_EQ(entries[0].identities[1].name, "second");
}

// An entry's name labels its callers in the metrics: given, or "entry-<n>"; anything that is no label value is
// refused where it stands.
TEST(BindingsFileParse, EntryNames) {
    auto parsed = parse_bindings_file(
        "{\"bindings\": [\n  {\"name\": \"web\", \"cgroup\": \"/a\", \"identities\": "
        "[{\"client_id\": \"" +
            kGuid1 + "\"}]},\n  " + entry("/b") + "\n]}",
        "f");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    ASSERT_EQ((*parsed)->entries().size(), 2u);
    EXPECT_EQ((*parsed)->entries()[0].name, "web");
    EXPECT_EQ((*parsed)->entries()[1].name, "entry-2");
    EXPECT_EQ((*parsed)->match("/b/c").name, "entry-2");
    for (const std::string& bad :
         std::vector<std::string>{"\"\"", "\"a b\"", "\"x/y\"", "7", "\"" + std::string(64, 'n') + "\""}) {
        auto refused =
            parse_bindings_file("{\"bindings\": [\n  {\"name\": " + bad +
                                    ", \"cgroup\": \"/a\", \"identities\": [{\"client_id\": \"" + kGuid1 + "\"}]}\n]}",
                                "f");
        ASSERT_FALSE(refused.ok()) << bad;
        EXPECT_EQ(refused.error().message.rfind("f:2:", 0), 0u) << refused.error().message;
        EXPECT_NE(refused.error().message.find("\"name\" must be"), std::string::npos) << refused.error().message;
    }
}

TEST(BindingsFileRead, MissingFile) {
    TempDir dir;
    auto r = read_bindings_file((dir.path / "absent.json").string());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("cannot read bindings file"), std::string::npos);
    EXPECT_EQ(r.error().code, ENOENT);
}

TEST(BindingsFileRead, RefusesHugeFile) {
    TempDir dir;
    std::filesystem::path file = dir.path / "bindings.json";
    std::ofstream(file, std::ios::trunc) << std::string(5 << 20, ' ');
    auto r = read_bindings_file(file.string());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("larger than"), std::string::npos);
    EXPECT_EQ(r.error().code, EFBIG);
}

TEST(BindingsFileRead, ErrorsNameThePath) {
    TempDir dir;
    std::filesystem::path file = dir.path / "bindings.json";
    std::ofstream(file, std::ios::trunc) << "{\"bindings\": [\n  {\"cgroup\": \"/a\"}\n]}";
    auto r = read_bindings_file(file.string());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.rfind(file.string() + ":2:3: ", 0), 0u) << r.error().message;

    std::ofstream(file, std::ios::trunc) << doc({entry("/a")});
    auto ok = read_bindings_file(file.string());
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    EXPECT_EQ((*ok)->source(), file.string());
    ASSERT_EQ((*ok)->entries().size(), 1u);
    EXPECT_EQ((*ok)->entries()[0].glob, "/a");
}

}  // namespace
}  // namespace podid
