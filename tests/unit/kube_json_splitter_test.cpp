// The watch body framer: objects split across reads, several per read, strings with braces.
#include <gtest/gtest.h>

#include "kube/json_splitter.h"

namespace podid::kube {
namespace {

struct SplitCase {
    const char* name;
    std::vector<std::string> reads;  // what successive socket reads return
    bool ok;
    std::vector<std::string> objects;
};

class KubeJsonSplitter : public testing::TestWithParam<SplitCase> {};

TEST_P(KubeJsonSplitter, Splits) {
    const SplitCase& c = GetParam();
    JsonObjectSplitter splitter(64);
    std::vector<std::string> out;
    bool ok = true;
    for (const auto& read : c.reads)
        ok = ok && splitter.feed(read, out);
    EXPECT_EQ(ok, c.ok);
    EXPECT_EQ(out, c.objects);
}

INSTANTIATE_TEST_SUITE_P(
    Table, KubeJsonSplitter,
    testing::Values(SplitCase{"one_per_line", {"{\"a\":1}\n{\"b\":2}\n"}, true, {"{\"a\":1}", "{\"b\":2}"}},
                    SplitCase{"split_mid_object", {"{\"a\":", "[1,2]", "}\n{"}, true, {"{\"a\":[1,2]}"}},
                    SplitCase{"no_newlines", {"{}{}{\"x\":{}}"}, true, {"{}", "{}", "{\"x\":{}}"}},
                    SplitCase{"braces_in_strings", {R"({"m":"}{\"}"})", "\r\n"}, true, {R"({"m":"}{\"}"})"}},
                    SplitCase{"escaped_backslash_ends_string", {R"({"m":"a\\"})"}, true, {R"({"m":"a\\"})"}},
                    SplitCase{"split_inside_escape", {R"({"m":"\)", R"("x"})"}, true, {R"({"m":"\"x"})"}},
                    SplitCase{"garbage_between", {"{}\nHTTP/1.1 200\n"}, false, {"{}"}},
                    SplitCase{"too_big", {"{\"a\":\"" + std::string(100, 'x') + "\"}"}, false, {}}),
    [](const testing::TestParamInfo<SplitCase>& info) { return std::string(info.param.name); });

TEST(KubeJsonSplitterIdle, TracksHalfObjects) {
    JsonObjectSplitter splitter(1024);
    std::vector<std::string> out;
    EXPECT_TRUE(splitter.idle());
    ASSERT_TRUE(splitter.feed("{\"a\"", out));
    EXPECT_FALSE(splitter.idle());
    ASSERT_TRUE(splitter.feed(":1}", out));
    EXPECT_TRUE(splitter.idle());
    EXPECT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace podid::kube
