// The BPF per-pod collector: counter slots, containers summed per pod, unknown cgroups under the node, and what it
// remembers as containers and pods go away.
#include "observe/bpf_collector.h"

#include <gtest/gtest.h>

#include <string>

#include "metrics_fixtures.h"
#include "observe/metrics.h"

namespace podid {
namespace {

using namespace podid::test;

std::string collect_text(const BpfCollector& c) {
    Metrics m("t");
    m.add_collectable(&c);
    return m.scrape();
}

TEST(BpfCollector, SlotClassification) {
    struct Row {
        int slot;
        bool redirect, blocked;
    } rows[] = {
        {PODID_CTR_REDIRECT4, true, false},      {PODID_CTR_REDIRECT6, true, false},
        {PODID_CTR_AGENT_DIRECT, false, false},  {PODID_CTR_DENY_PORT, false, true},
        {PODID_CTR_DROP_TCP, false, true},       {PODID_CTR_DROP_UDP, false, true},
        {PODID_CTR_DROP_RAW_AGENT, false, true}, {PODID_CTR_NO_STORAGE, false, true},
        {PODID_CTR_MAX - 1, false, false},  // reserved slot
    };
    for (const auto& r : rows) {
        EXPECT_EQ(is_redirect_slot(r.slot), r.redirect) << r.slot;
        EXPECT_EQ(is_blocked_slot(r.slot), r.blocked) << r.slot;
    }
}

TEST(BpfCollector, AggregatesContainersPerPodAndUnknownsUnderNode) {
    FakeNode node;
    node.pods[kUidA] = PodInfo{"team-a", "web-1", kUidA, "sa", "n", false, {}};
    node.paths = {{10, container(kUidA, 'a')},
                  {11, container(kUidA, 'b')},
                  {12, pod_dir(kUidA)},
                  {20, "/system.slice/sshd.service"},  // host process
                  {30, container(kUidB, 'c')}};        // pod not in the directory (yet)
    node.count(10, PODID_CTR_REDIRECT4, 5);
    node.count(11, PODID_CTR_REDIRECT4, 2);
    node.count(11, PODID_CTR_REDIRECT6, 1);
    node.count(11, PODID_CTR_DROP_UDP, 4);
    node.count(12, PODID_CTR_DROP_UDP, 1);
    node.count(20, PODID_CTR_REDIRECT4, 7);
    node.count(30, PODID_CTR_DENY_PORT, 3);
    node.count(40, PODID_CTR_REDIRECT4, 99);  // cgroup gone and never resolved: left out
    BpfCollector c(node.sources());
    auto s = collect_text(c);
    EXPECT_EQ(sample(s, R"(podid_redirected_connections_total{namespace="team-a",pod="web-1"})"), 8);
    EXPECT_EQ(sample(s, R"(podid_blocked_packets_total{namespace="team-a",pod="web-1",reason="drop_udp"})"), 5);
    EXPECT_EQ(sample(s, R"(podid_redirected_connections_total{namespace="",pod="_node"})"), 7);
    EXPECT_EQ(sample(s, R"(podid_blocked_packets_total{namespace="",pod="_node",reason="deny_metadata_port"})"), 3);
    EXPECT_EQ(lines_containing(s, "podid_redirected_connections_total{"), 2u);
    EXPECT_EQ(lines_containing(s, "podid_blocked_packets_total{"), 2u);  // zero reasons are not emitted

    // A container exits: its counts stay with the pod (the counter must not go backwards).
    node.paths.erase(11);
    s = collect_text(c);
    EXPECT_EQ(sample(s, R"(podid_redirected_connections_total{namespace="team-a",pod="web-1"})"), 8);

    // The pod is deleted: its cgroups are gone and, once forgotten, its series disappear.
    node.paths.erase(10);
    node.paths.erase(12);
    node.pods.erase(kUidA);
    c.forget_pod("team-a", "web-1");
    s = collect_text(c);
    EXPECT_EQ(lines_containing(s, "web-1"), 0u);

    // The datapath forgets cgroups: remembered resolutions follow the map, so they stay bounded.
    node.counters.clear();
    collect_text(c);
    EXPECT_EQ(c.remembered(), 0u);
}

}  // namespace
}  // namespace podid
