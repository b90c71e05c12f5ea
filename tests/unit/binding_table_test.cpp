// Which entry of a bindings table binds a cgroup path: file order, ancestors, the memo of earlier answers.
#include "policy/binding_table.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "policy/static_bindings_file.h"
#include "static_bindings_fixtures.h"

namespace podid {
namespace {

using test::doc;
using test::entry;
using test::kGuid1;

struct MatchRow {
    const char* name;
    std::string path;
    int entry;  // 1-based entry expected to win; 0 for none
};

TEST(BindingTableMatch, Table) {
    auto parsed = parse_bindings_file(doc({
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
TEST(BindingTableMatch, ManyDistinctPathsOutgrowTheMemo) {
    auto parsed = parse_bindings_file(doc({entry("/ns/**/leaf")}), "f");
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

TEST(BindingTableMatch, RootPatternBindsEverything) {
    auto parsed = parse_bindings_file(doc({entry("/")}), "f");
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ((*parsed)->match("/").kind, BindingKind::static_file);
    EXPECT_EQ((*parsed)->match("/any/thing").kind, BindingKind::static_file);
    EXPECT_EQ((*parsed)->match("").kind, BindingKind::none);
}

TEST(BindingTableMatch, PathologicalPatternsStayFast) {
    // Many stars against a long non-matching segment, and "**" against a deep path.
    auto parsed = parse_bindings_file(doc({entry("/" + std::string("*a*a*a*a*a*a*a*a*a*a*b")), entry("/q/*/**")}), "f");
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

}  // namespace
}  // namespace podid
