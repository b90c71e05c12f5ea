// The feature table behind the start-up probes: every program, map, helper and attach type of bpf/podid.bpf.c
// has a row, and each missing feature becomes one sentence naming it and the first kernel that has it.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "datapath/probe.h"

namespace podid {
namespace {

const FeatureRequirement* find(const char* what) {
    for (const auto& r : kernel_requirements())
        if (std::string(r.what) == what)
            return &r;
    return nullptr;
}

struct MessageCase {
    const char* what;
    const char* expected;
};

TEST(KernelProbe, MissingFeatureSentences) {
    const MessageCase cases[] = {
        {"BPF_MAP_TYPE_SK_STORAGE", "the kernel lacks BPF_MAP_TYPE_SK_STORAGE (Linux 5.2+)"},
        {"the cgroup/getpeername4 attach type", "the kernel lacks the cgroup/getpeername4 attach type (Linux 5.8+)"},
        {"the cgroup/getpeername6 attach type", "the kernel lacks the cgroup/getpeername6 attach type (Linux 5.8+)"},
        {"bpf_link attachment to cgroups (BPF_LINK_CREATE)",
         "the kernel lacks bpf_link attachment to cgroups (BPF_LINK_CREATE) (Linux 5.7+)"},
        {"the bpf_get_current_cgroup_id helper in cgroup/connect programs",
         "the kernel lacks the bpf_get_current_cgroup_id helper in cgroup/connect programs (Linux 5.7+)"},
        {"the sk field of bpf_sock_ops (socket storage from sockops)",
         "the kernel lacks the sk field of bpf_sock_ops (socket storage from sockops) (Linux 5.10+)"},
        {"BPF_PROG_TYPE_CGROUP_SOCK_ADDR", "the kernel lacks BPF_PROG_TYPE_CGROUP_SOCK_ADDR (Linux 4.17+)"},
        {"a mounted cgroup v2 (unified) hierarchy",
         "the node has no cgroup v2 hierarchy mounted (podid needs the unified hierarchy, Linux 4.5+, and a node "
         "booted with cgroup v2)"},
    };
    for (const auto& c : cases) {
        const FeatureRequirement* r = find(c.what);
        ASSERT_NE(r, nullptr) << c.what;
        EXPECT_EQ(missing_feature_message(*r), c.expected);
    }
}

// Every row is one sentence: no row may be unnamed or lack a version, and no two rows may say the same thing.
TEST(KernelProbe, EveryRowIsNamedVersionedAndUnique) {
    std::set<std::string> seen;
    for (const auto& r : kernel_requirements()) {
        ASSERT_NE(r.what, nullptr);
        ASSERT_NE(r.min_kernel, nullptr);
        EXPECT_TRUE(seen.insert(r.what).second) << "duplicate row " << r.what;
        std::string v = r.min_kernel;
        EXPECT_NE(v.find('.'), std::string::npos) << r.what << ": " << v;
        std::string msg = missing_feature_message(r);
        EXPECT_NE(msg.find(std::string("Linux ") + r.min_kernel + "+"), std::string::npos) << msg;
    }
}

// The table covers what bpf/podid.bpf.c uses: each map type, helper call and section has a row.
TEST(KernelProbe, TableCoversTheProgramsSource) {
    std::ifstream in(std::string(PODID_SOURCE_DIR) + "/bpf/podid.bpf.c");
    ASSERT_TRUE(in) << "cannot read bpf/podid.bpf.c";
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string src = ss.str();
    std::string rows;
    for (const auto& r : kernel_requirements())
        rows += std::string(r.what) + "\n";

    const std::pair<const char*, const char*> uses[] = {
        {"BPF_MAP_TYPE_SK_STORAGE", "BPF_MAP_TYPE_SK_STORAGE"},
        {"BPF_MAP_TYPE_LRU_HASH", "BPF_MAP_TYPE_LRU_HASH"},
        {"BPF_MAP_TYPE_LRU_PERCPU_HASH", "BPF_MAP_TYPE_LRU_PERCPU_HASH"},
        {"BPF_MAP_TYPE_HASH,", "BPF_MAP_TYPE_HASH"},
        {"bpf_get_current_cgroup_id(", "bpf_get_current_cgroup_id"},
        {"bpf_get_current_pid_tgid(", "bpf_get_current_pid_tgid"},
        {"bpf_get_current_comm(", "bpf_get_current_comm"},
        {"bpf_ktime_get_ns(", "bpf_ktime_get_ns"},
        {"bpf_sk_storage_get(", "bpf_sk_storage_get"},
        {"bpf_skb_load_bytes(", "bpf_skb_load_bytes"},
        {"bpf_skb_cgroup_id(", "bpf_skb_cgroup_id"},
        {"bpf_sk_fullsock(", "bpf_sk_fullsock"},
        {"SEC(\"cgroup/connect4\")", "cgroup/connect4"},
        {"SEC(\"cgroup/connect6\")", "cgroup/connect6"},
        {"SEC(\"cgroup/getpeername4\")", "cgroup/getpeername4"},
        {"SEC(\"cgroup/getpeername6\")", "cgroup/getpeername6"},
        {"SEC(\"sockops\")", "BPF_PROG_TYPE_SOCK_OPS"},
        {"SEC(\"cgroup_skb/egress\")", "BPF_PROG_TYPE_CGROUP_SKB"},
    };
    for (const auto& [in_source, in_table] : uses) {
        if (src.find(in_source) == std::string::npos)
            continue;  // the programs stopped using it; an extra row only costs a probe
        EXPECT_NE(rows.find(in_table), std::string::npos) << in_source << " is used but not probed";
    }
}

}  // namespace
}  // namespace podid
