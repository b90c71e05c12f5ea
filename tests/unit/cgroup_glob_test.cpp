// Cgroup path patterns: what compiles, how one segment matches, "**", ancestors, and splitting paths.
#include "policy/cgroup_glob.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace podid {
namespace {

struct CompileRow {
    const char* name;
    std::string glob;
    std::vector<std::string> segments;  // when it compiles
    std::string error = {};             // else a fragment of the reason
};

TEST(CgroupGlob, Compile) {
    const std::vector<CompileRow> rows = {
        {"root", "/", {}},
        {"root_double_star", "/**", {"**"}},
        {"trailing_slash", "/a/b/", {"a", "b"}},
        {"kept_as_written", "/a*/[!x]?/\\*", {"a*", "[!x]?", "\\*"}},
        {"leading_bracket_member", "/[]]", {"[]]"}},
        {"negated_leading_bracket", "/[!]a]", {"[!]a]"}},
        {"escaped_bracket", "/a\\[", {"a\\["}},
        {"empty", "", {}, "must be an absolute cgroup path"},
        {"relative", "a/b", {}, "must be an absolute cgroup path"},
        {"double_slash", "/a//b", {}, "empty path segment"},
        {"two_trailing_slashes", "/a//", {}, "empty path segment"},
        {"dot", "/a/.", {}, "\".\" and \"..\" segments are not allowed"},
        {"dotdot", "/../a", {}, "\".\" and \"..\" segments are not allowed"},
        {"double_star_in_segment", "/a**", {}, "\"**\" must be a whole path segment"},
        {"triple_star", "/***", {}, "\"**\" must be a whole path segment"},
        {"lone_backslash", "/a\\", {}, "lone backslash"},
        {"unclosed_class", "/a[bc", {}, "unclosed '['"},
        {"only_bracket", "/[", {}, "unclosed '['"},
        {"bracket_member_unclosed", "/[]", {}, "unclosed '['"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(std::string(row.name) + ": " + row.glob);
        auto compiled = compile_cgroup_glob(row.glob);
        if (row.error.empty()) {
            ASSERT_TRUE(compiled.ok()) << compiled.error().message;
            EXPECT_EQ(*compiled, row.segments);
        } else {
            ASSERT_FALSE(compiled.ok());
            EXPECT_NE(compiled.error().message.find(row.error), std::string::npos) << compiled.error().message;
        }
    }
}

struct MatchRow {
    std::string glob;
    std::string path;
    bool matches;
};

TEST(CgroupGlob, Match) {
    const std::vector<MatchRow> rows = {
        // one segment
        {"/abc", "/abc", true},
        {"/abc", "/abcd", false},
        {"/abc", "/ab", false},
        {"/a*", "/a", true},  // "*" may be empty
        {"/*c", "/abc", true},
        {"/*", "/anything", true},
        {"/a*b*c", "/aXbYbZc", true},  // backtracks to the last '*'
        {"/a*b*c", "/aXbYbZ", false},
        {"/a?c", "/abc", true},
        {"/a?c", "/ac", false},
        {"/??", "/abc", false},
        {"/[abc]", "/b", true},
        {"/[abc]", "/d", false},
        {"/[a-c]x", "/bx", true},
        {"/[a-c]x", "/dx", false},
        {"/[!a-c]", "/d", true},
        {"/[^a-c]", "/a", false},
        {"/[]]", "/]", true},    // a leading ']' is a member
        {"/[!]]", "/]", false},  // ... also after '!'
        {"/[a-]", "/-", true},   // a '-' before ']' is a member
        {"/[-a]", "/-", true},
        {"/\\*", "/*", true},  // an escaped '*' is literal
        {"/\\*", "/x", false},
        {"/\\?", "/?", true},
        {"/a\\[b", "/a[b", true},
        // segments, ancestors and "**"
        {"/a/*", "/a/b", true},
        {"/a/*", "/a", false},  // "*" needs a segment of its own
        {"/*", "/a/b", true},   // an ancestor matches
        {"/a/b", "/a/b/c/d", true},
        {"/a/b", "/a/bc", false},       // a longer name is no descendant
        {"/a/*/c", "/a/x/y/c", false},  // "*" never crosses '/'
        {"/**", "/", true},
        {"/", "/", true},
        {"/", "/a/b", true},
        {"/**/c", "/c", true},  // zero segments
        {"/**/c", "/a/b/c", true},
        {"/**/c", "/a/b/cc", false},
        {"/a/**", "/a", true},
        {"/a/**/b/**/c", "/a/b/c", true},
        {"/a/**/b/**/c", "/a/x/b/y/z/c/w", true},
        {"/a/**/b/**/c", "/a/x/c/b", false},
        // paths that are not absolute cgroup paths match nothing
        {"/", "", false},
        {"/**", "a/b", false},
        {"/**", "/a//b", false},
        {"/a", "/a/", true},  // a trailing '/' is ignored
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.glob + " against " + row.path);
        auto compiled = compile_cgroup_glob(row.glob);
        ASSERT_TRUE(compiled.ok()) << compiled.error().message;
        EXPECT_EQ(glob_matches_path_or_ancestor(*compiled, row.path), row.matches);
        auto segs = split_cgroup_path(row.path);
        if (segs) {
            EXPECT_EQ(glob_matches_segments_or_ancestor(*compiled, *segs), row.matches);
        }
    }
}

TEST(CgroupGlob, SplitPath) {
    using Segs = std::vector<std::string_view>;
    EXPECT_EQ(split_cgroup_path("/"), Segs{});
    EXPECT_EQ(split_cgroup_path("/a"), (Segs{"a"}));
    EXPECT_EQ(split_cgroup_path("/a/b.slice/c/"), (Segs{"a", "b.slice", "c"}));
    EXPECT_FALSE(split_cgroup_path(""));
    EXPECT_FALSE(split_cgroup_path("a/b"));
    EXPECT_FALSE(split_cgroup_path("/a//"));
    EXPECT_FALSE(split_cgroup_path("/a//b"));
}

TEST(CgroupGlob, LongInputsStayFast) {
    std::string many_stars = "/";
    for (int i = 0; i < 50; ++i)
        many_stars += "*a";
    auto stars = compile_cgroup_glob(many_stars + "*b");  // "**" would be rejected: one star per character
    ASSERT_TRUE(stars.ok()) << stars.error().message;
    auto deep = compile_cgroup_glob("/**/**/**/**/x");
    ASSERT_TRUE(deep.ok());
    std::string deep_path;
    for (int i = 0; i < 500; ++i)
        deep_path += "/q";
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(glob_matches_path_or_ancestor(*stars, "/" + std::string(10000, 'a')));
    EXPECT_FALSE(glob_matches_path_or_ancestor(*deep, deep_path));
    EXPECT_TRUE(glob_matches_path_or_ancestor(*deep, deep_path + "/x"));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

}  // namespace
}  // namespace podid
