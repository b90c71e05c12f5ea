// The --bindings file: parsing and its error messages, pattern matching, reload and file watching.
#include "policy/static_bindings.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace podid {
namespace {

namespace fs = std::filesystem;

const std::string kGuid1 = "11111111-2222-3333-4444-555555555555";
const std::string kGuid2 = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const std::string kArmId =
    "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x";

// One entry per line so that error lines are easy to predict: line 1 is {"bindings": [, entry i is on line i+1.
std::string doc(const std::vector<std::string>& entries) {
    std::string s = "{\"bindings\": [\n";
    for (std::size_t i = 0; i < entries.size(); ++i)
        s += "  " + entries[i] + (i + 1 < entries.size() ? ",\n" : "\n");
    return s + "]}\n";
}

std::string entry(const std::string& cgroup, const std::string& identities = "{\"client_id\": \"" + kGuid1 + "\"}") {
    return "{\"cgroup\": \"" + cgroup + "\", \"identities\": [" + identities + "]}";
}

struct ParseRow {
    const char* name;
    std::string json;
    bool ok;
    std::string fragment = {};  // expected in the error message
    int line = 0;               // expected line in "test.json:<line>:"
};

TEST(StaticBindingsParse, Table) {
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
        auto parsed = StaticBindings::parse(row.json, "test.json");
        ASSERT_EQ(parsed.ok(), row.ok) << (parsed.ok() ? "parsed" : parsed.error().message);
        if (row.ok)
            continue;
        const std::string& msg = parsed.error().message;
        EXPECT_NE(msg.find(row.fragment), std::string::npos) << msg;
        EXPECT_EQ(msg.rfind("test.json:" + std::to_string(row.line) + ":", 0), 0u) << msg;
        EXPECT_EQ(parsed.error().code, EINVAL);
    }
}

TEST(StaticBindingsParse, ColumnPointsAtTheToken) {
    auto parsed = StaticBindings::parse("{\"bindings\": [\n  {\"cgroup\": \"/a\",, }\n]}", "f");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().message.rfind("f:2:19: ", 0), 0u) << parsed.error().message;

    parsed = StaticBindings::parse(doc({entry("/a"), entry("/a", "{\"client_id\": \"x\"}")}), "f");
    ASSERT_FALSE(parsed.ok());
    // the key of the bad value: line 3, after "  {"cgroup": "/a", "identities": [{"
    EXPECT_EQ(parsed.error().message.rfind("f:3:36: ", 0), 0u) << parsed.error().message;
}

TEST(StaticBindingsParse, ValuesAndDefaults) {
    auto parsed = StaticBindings::parse(
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

// ---- matching ----

struct MatchRow {
    const char* name;
    std::string path;
    int entry;  // 1-based entry expected to win; 0 for none
};

TEST(StaticBindingsMatch, Table) {
    auto parsed = StaticBindings::parse(doc({
                                            entry("/system.slice/app.service"),                            // 1
                                            entry("/kubepods.slice/*/kubepods-burstable-pod1234*.slice"),  // 2
                                            entry("/kubepods.slice/kubepods-pod[0-9]?.slice"),             // 3
                                            entry("/ns/**/leaf"),                                          // 4
                                            entry("/sys*"),                                                // 5
                                            entry("/lit\\\\*"),                                            // 6
                                            entry("/x/[!a]b/"),                                            // 7
                                        }),
                                        "f");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    const auto& table = **parsed;
    const std::vector<MatchRow> rows = {
        {"exact", "/system.slice/app.service", 1},
        {"ancestor", "/system.slice/app.service/sub/deeper", 1},
        {"trailing_slash", "/system.slice/app.service/", 1},
        {"sibling_prefix_is_not_ancestor", "/system.slice/app.service2", 5},  // falls to /sys*
        {"precedence_first_wins", "/system.slice/app.service", 1},            // /sys* also matches, later
        {"broad_after_narrow", "/system.slice/other.service", 5},
        {"glob", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_ab.slice", 2},
        {"glob_container_below", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234.slice/c.scope",
         2},
        {"star_does_not_cross_slash", "/kubepods.slice/a/b/kubepods-burstable-pod1234.slice", 0},
        {"star_needs_a_segment", "/kubepods.slice/kubepods-burstable-pod1234.slice", 0},
        {"class_and_question", "/kubepods.slice/kubepods-pod7x.slice", 3},
        {"class_miss", "/kubepods.slice/kubepods-podxx.slice", 0},
        {"double_star_zero", "/ns/leaf", 4},
        {"double_star_many", "/ns/a/b/c/leaf/child", 4},
        {"double_star_miss", "/ns/a/b/notleaf", 0},
        {"escaped_star_literal", "/lit*", 6},
        {"escaped_star_is_not_wildcard", "/litx", 0},
        {"negated_class", "/x/bb", 7},
        {"negated_class_miss", "/x/ab", 0},
        {"no_match", "/user.slice/user-0.slice", 0},
        {"root", "/", 0},
        {"empty", "", 0},
        {"relative", "system.slice/app.service", 0},
        {"double_slash", "/system.slice//app.service", 0},
    };
    // The second pass is answered from the table's memo of earlier answers: it must say the same.
    for (int pass = 0; pass < 2; ++pass)
        for (const auto& row : rows) {
            SCOPED_TRACE(std::string(row.name) + ": " + row.path + (pass ? " (memo)" : ""));
            Binding b = table.match(row.path);
            if (row.entry == 0) {
                EXPECT_EQ(b.kind, BindingKind::none);
                EXPECT_TRUE(b.identities.empty());
                continue;
            }
            EXPECT_EQ(b.kind, BindingKind::static_file);
            ASSERT_EQ(b.identities.size(), 1u);
            EXPECT_EQ(b.identities[0].client_id, kGuid1);
            const auto& e = table.entries()[static_cast<std::size_t>(row.entry - 1)];
            EXPECT_EQ(b.explanation, "bindings entry " + std::to_string(row.entry) + " (" + e.glob + ")");
        }
}

// More distinct paths than the memo keeps (it starts over when full): every answer stays right.
TEST(StaticBindingsMatch, ManyDistinctPathsOutgrowTheMemo) {
    auto parsed = StaticBindings::parse(doc({entry("/ns/**/leaf")}), "f");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    const auto& table = **parsed;
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 20'000; ++i) {
            const std::string base = "/ns/p" + std::to_string(i);
            ASSERT_EQ(table.match(base + "/leaf").kind, BindingKind::static_file) << base;
            ASSERT_EQ(table.match(base + "/other").kind, BindingKind::none) << base;
        }
    }
}

TEST(StaticBindingsMatch, RootPatternBindsEverything) {
    auto parsed = StaticBindings::parse(doc({entry("/")}), "f");
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ((*parsed)->match("/").kind, BindingKind::static_file);
    EXPECT_EQ((*parsed)->match("/any/thing").kind, BindingKind::static_file);
    EXPECT_EQ((*parsed)->match("").kind, BindingKind::none);
}

TEST(StaticBindingsMatch, PathologicalPatternsStayFast) {
    // Many stars against a long non-matching segment, and "**" against a deep path.
    auto parsed =
        StaticBindings::parse(doc({entry("/" + std::string("*a*a*a*a*a*a*a*a*a*a*b")), entry("/q/*/**")}), "f");
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    std::string path = "/" + std::string(4000, 'a');
    std::string deep_path;
    for (int i = 0; i < 200; ++i)
        deep_path += "/q";
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ((*parsed)->match(path).kind, BindingKind::none);
    EXPECT_EQ((*parsed)->match(deep_path + "x").kind, BindingKind::static_file);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

// ---- the file: load, reload, watch ----

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "podid-bindings-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::trunc) << text; }

// Replaces the file the way editors and ConfigMap updates do: write aside, then rename over.
void replace_file(const fs::path& p, const std::string& text) {
    fs::path tmp = p.string() + ".tmp";
    write_file(tmp, text);
    fs::rename(tmp, p);
}

Caller caller_at(const std::string& path) {
    Caller c;
    c.cgroup_path = path;
    return c;
}

TEST(StaticBindingsFile, LoadAndReloadKeepsOldTableOnBadFile) {
    TempDir dir;
    fs::path file = dir.path / "bindings.json";
    std::vector<std::string> errors;
    StaticBindings bindings(file.string(), [&](const std::string& m) { errors.push_back(m); });

    EXPECT_FALSE(bindings.ready());
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::none);
    auto missing = bindings.load();
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message.find("cannot read bindings file"), std::string::npos);
    EXPECT_FALSE(bindings.ready());

    write_file(file, "{\"bindings\": [\n  {\"cgroup\": \"/a\"}\n]}");
    auto bad = bindings.load();
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find(file.string() + ":2:"), std::string::npos) << bad.error().message;
    EXPECT_FALSE(bindings.ready());
    EXPECT_TRUE(errors.empty());  // load() returns its error, it does not log

    write_file(file, doc({entry("/a")}));
    ASSERT_TRUE(bindings.load().ok());
    EXPECT_TRUE(bindings.ready());
    Binding b = bindings.bindings_for(caller_at("/a/b"));
    EXPECT_EQ(b.kind, BindingKind::static_file);
    EXPECT_EQ(b.explanation, "bindings entry 1 (/a)");
    EXPECT_EQ(bindings.bindings_for(caller_at("")).kind, BindingKind::none);

    // A broken edit: the old table stays, the error is logged and returned.
    write_file(file, doc({entry("/b")}).substr(0, 20));
    auto r = bindings.reload();
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0], r.error().message);
    EXPECT_TRUE(bindings.ready());
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::static_file);
    EXPECT_EQ(bindings.bindings_for(caller_at("/b")).kind, BindingKind::none);

    // The file removed: same.
    fs::remove(file);
    EXPECT_FALSE(bindings.reload().ok());
    EXPECT_EQ(errors.size(), 2u);
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::static_file);

    // Fixed: the new table replaces the old one.
    write_file(file, doc({entry("/b")}));
    ASSERT_TRUE(bindings.reload().ok());
    EXPECT_EQ(bindings.bindings_for(caller_at("/a")).kind, BindingKind::none);
    EXPECT_EQ(bindings.bindings_for(caller_at("/b")).kind, BindingKind::static_file);
}

TEST(StaticBindingsFile, RefusesHugeFile) {
    TempDir dir;
    fs::path file = dir.path / "bindings.json";
    write_file(file, std::string(5 << 20, ' '));
    StaticBindings bindings(file.string());
    auto r = bindings.load();
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("larger than"), std::string::npos);
}

// Runs `io` until `done()` or a deadline.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline)
            return false;
        io.restart();
        io.run_for(std::chrono::milliseconds(10));
    }
    return true;
}

class StaticBindingsWatch : public ::testing::TestWithParam<bool> {};  // true: inotify only; false: polling

TEST_P(StaticBindingsWatch, SeesInPlaceWritesAndRenames) {
    const bool inotify_only = GetParam();
    TempDir dir;
    fs::path file = dir.path / "bindings.json";
    write_file(file, doc({entry("/a")}));
    std::vector<std::string> errors;
    StaticBindings bindings(file.string(), [&](const std::string& m) { errors.push_back(m); });
    ASSERT_TRUE(bindings.load().ok());

    boost::asio::io_context io;
    // Poll interval 0 disables polling, so the first mode proves inotify alone sees each kind of change; the
    // second checks that the poll and inotify together still reload once per change.
    bindings.watch(io, inotify_only ? std::chrono::milliseconds(0) : std::chrono::milliseconds(20));
    auto binds = [&](const std::string& path) {
        return bindings.bindings_for(caller_at(path)).kind == BindingKind::static_file;
    };

    write_file(file, doc({entry("/b")}));  // in place: IN_CLOSE_WRITE
    EXPECT_TRUE(run_until(io, [&] { return binds("/b"); }));
    EXPECT_FALSE(binds("/a"));

    replace_file(file, doc({entry("/c")}));  // rename over: IN_MOVED_TO
    EXPECT_TRUE(run_until(io, [&] { return binds("/c"); }));

    replace_file(file, "{");  // a bad file is reported once and the table stays
    EXPECT_TRUE(run_until(io, [&] { return !errors.empty(); }));
    io.restart();
    io.run_for(std::chrono::milliseconds(100));
    EXPECT_EQ(errors.size(), 1u);
    EXPECT_TRUE(binds("/c"));

    write_file(dir.path / "unrelated.json", "{");  // events for other files change nothing
    io.restart();
    io.run_for(std::chrono::milliseconds(100));
    EXPECT_EQ(errors.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Modes, StaticBindingsWatch, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Inotify" : "InotifyAndPoll"; });

TEST(StaticBindingsFile, PollAloneNoticesChangeOfAnotherDirectory) {
    // A directory replaced as a whole (its old inotify watch goes blind): only the poll can notice.
    TempDir dir;
    fs::path sub = dir.path / "cfg";
    fs::create_directories(sub);
    fs::path file = sub / "bindings.json";
    write_file(file, doc({entry("/a")}));
    StaticBindings bindings(file.string());
    ASSERT_TRUE(bindings.load().ok());
    boost::asio::io_context io;
    bindings.watch(io, std::chrono::milliseconds(20));

    fs::path other = dir.path / "cfg2";
    fs::create_directories(other);
    write_file(other / "bindings.json", doc({entry("/z")}));
    fs::remove_all(sub);
    fs::rename(other, sub);
    EXPECT_TRUE(run_until(io, [&] { return bindings.bindings_for(caller_at("/z")).kind == BindingKind::static_file; }));
}

TEST(StaticBindingsFile, DestroyedBeforeIoContext) {
    TempDir dir;
    fs::path file = dir.path / "bindings.json";
    write_file(file, doc({entry("/a")}));
    boost::asio::io_context io;
    {
        StaticBindings bindings(file.string());
        ASSERT_TRUE(bindings.load().ok());
        bindings.watch(io, std::chrono::milliseconds(5));
    }
    write_file(file, doc({entry("/b")}));
    // The handlers find the bindings gone and stop, closing the inotify descriptor: the io_context runs out of work.
    io.run_for(std::chrono::seconds(2));
    EXPECT_TRUE(io.stopped());
}

}  // namespace
}  // namespace podid
