// Inputs the fuzzers (tests/fuzz) found, kept as plain unit tests so the fix stays fixed without clang.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kube/json_splitter.h"

namespace podid {
namespace {

// fuzz_json_splitter: an object of exactly limit + 1 bytes was handed out (the size was checked only
// after the closing brace had emptied the buffer).
TEST(FuzzRegress, SplitterRefusesAnObjectOneByteOverTheLimit) {
    struct Row {
        size_t limit;
        std::string stream;
        bool ok;
        size_t objects;
    };
    const std::vector<Row> rows = {
        {5, R"({"a"})", true, 1},   // exactly the limit
        {4, R"({"a"})", false, 0},  // one over: refused, never delivered
        {4, R"({"ab")", false, 0},  // one over while still open
    };
    for (const Row& row : rows) {
        kube::JsonObjectSplitter splitter(row.limit);
        std::vector<std::string> out;
        EXPECT_EQ(splitter.feed(row.stream, out), row.ok) << row.limit << " " << row.stream;
        EXPECT_EQ(out.size(), row.objects) << row.limit << " " << row.stream;
    }
}

}  // namespace
}  // namespace podid
