// How the binding sources combine (policy/chained_bindings.h): the first source's answer wins when it matched,
// else the second's; ready only when both are. NoBindings binds nobody and is always ready.
#include "policy/chained_bindings.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace podid {
namespace {

// A source with a fixed answer that counts how often it was asked and remembers the caller it saw last.
class FakeSource : public BindingSource {
public:
    FakeSource(Binding answer, bool ready) : answer_(std::move(answer)), ready_(ready) {}
    Binding bindings_for(const Caller& caller) const override {
        ++asked;
        last_cgroup = caller.cgroup_path;
        return answer_;
    }
    bool ready() const override { return ready_; }

    mutable int asked = 0;
    mutable std::string last_cgroup;

private:
    Binding answer_;
    bool ready_;
};

const Identity kFileId{"11111111-aaaa-4aaa-aaaa-aaaaaaaaaaaa", "", "", "from-file"};
const Identity kKubeId{"22222222-bbbb-4bbb-bbbb-bbbbbbbbbbbb", "", "", "from-kube"};
const Binding kFileEntry{BindingKind::static_file, {kFileId}, "bindings entry 1"};
const Binding kKubeBinding{BindingKind::workload_identity, {kKubeId}, "service account default/web"};
const Binding kNodeException{BindingKind::node_identity, {}, "AzurePodIdentityException default/ex"};
const Binding kEmptyFileEntry{BindingKind::static_file, {}, "bindings entry 2 (no identities)"};
const Binding kNothing{};

TEST(ChainedBindings, FirstSourceWinsWhenItMatches) {
    enum class From { first, second };
    struct Row {
        const char* name;
        Binding first, second;
        From want;          // whose answer comes back, whole
        bool second_asked;  // the second source is not consulted once the first matched
    };
    const std::vector<Row> rows = {
        {"only the first matches", kFileEntry, kNothing, From::first, false},
        {"both match: the first wins", kFileEntry, kKubeBinding, From::first, false},
        {"only the second matches", kNothing, kKubeBinding, From::second, true},
        {"neither matches", kNothing, kNothing, From::second, true},
        // A match is any kind but none, identities or not: an empty entry still shadows the second source.
        {"first matches without identities", kEmptyFileEntry, kKubeBinding, From::first, false},
        {"node identity from the second", kNothing, kNodeException, From::second, true},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.name);
        FakeSource first(row.first, true);
        FakeSource second(row.second, true);
        ChainedBindings chain(first, second);
        Caller caller;
        caller.cgroup_path = "/kubepods.slice/kubepods-pod1.slice";
        const Binding got = chain.bindings_for(caller);
        const Binding& want = row.want == From::first ? row.first : row.second;
        EXPECT_STREQ(to_string(got.kind), to_string(want.kind));
        EXPECT_EQ(got.explanation, want.explanation);
        ASSERT_EQ(got.identities.size(), want.identities.size());
        for (size_t i = 0; i < got.identities.size(); ++i) {
            EXPECT_EQ(got.identities[i].client_id, want.identities[i].client_id);
        }
        EXPECT_EQ(first.asked, 1);
        EXPECT_EQ(second.asked, row.second_asked ? 1 : 0);
        EXPECT_EQ(first.last_cgroup, caller.cgroup_path);
        if (row.second_asked) {
            EXPECT_EQ(second.last_cgroup, caller.cgroup_path);  // asked about the same caller
        }
    }
}

TEST(ChainedBindings, ReadyWhenBothAre) {
    struct Row {
        bool first, second, want;
    };
    const std::vector<Row> rows = {
        {true, true, true},
        {true, false, false},
        {false, true, false},
        {false, false, false},
    };
    for (const Row& row : rows) {
        FakeSource first(kNothing, row.first);
        FakeSource second(kNothing, row.second);
        EXPECT_EQ(ChainedBindings(first, second).ready(), row.want) << row.first << " " << row.second;
    }
}

TEST(NoBindings, NobodyIsBoundAndItIsAlwaysReady) {
    NoBindings none;
    Caller pod;
    pod.origin = Origin{4242, 17, "python3", "169.254.169.254:80", true};
    pod.cgroup_path = "/kubepods.slice/kubepods-pod1.slice";
    for (const Caller& caller : {Caller{}, pod}) {
        const Binding got = none.bindings_for(caller);
        EXPECT_EQ(got.kind, BindingKind::none);
        EXPECT_TRUE(got.identities.empty());
        EXPECT_EQ(got.explanation, "");
    }
    EXPECT_TRUE(none.ready());
    // Behind a file that matched nothing, NoBindings answers none and keeps the chain ready.
    FakeSource file(kNothing, true);
    ChainedBindings chain(file, none);
    EXPECT_EQ(chain.bindings_for(pod).kind, BindingKind::none);
    EXPECT_TRUE(chain.ready());
}

}  // namespace
}  // namespace podid
