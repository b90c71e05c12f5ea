// Kubelet cgroup path shapes -> pod UID, container id, runtime, QoS.
#include "caller/kubelet_cgroup.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace podid {
namespace {

const std::string kCid = "3f1e0c5b9a7d4e2f8c6b1a0d9e8f7c6b5a4d3e2f1c0b9a8d7e6f5c4b3a2d1e0f";  // 64 hex
const std::string kUid = "1d2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b";
const std::string kUidU = "1d2f3a4b_5c6d_4e7f_8a9b_0c1d2e3f4a5b";  // systemd escaping

struct Row {
    const char* name;
    std::string path;
    bool ok;
    std::string uid = {};
    std::string container_id = {};
    std::string runtime = {};
    std::string qos = {};
};

std::vector<Row> rows() {
    const std::string bu = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidU + ".slice";
    const std::string be = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidU + ".slice";
    const std::string gu = "/kubepods.slice/kubepods-pod" + kUidU + ".slice";
    return {
        // systemd driver, every QoS and runtime
        {"sd_burstable_containerd", bu + "/cri-containerd-" + kCid + ".scope", true, kUid, kCid, "containerd",
         "burstable"},
        {"sd_burstable_crio", bu + "/crio-" + kCid + ".scope", true, kUid, kCid, "crio", "burstable"},
        {"sd_burstable_docker", bu + "/docker-" + kCid + ".scope", true, kUid, kCid, "docker", "burstable"},
        {"sd_besteffort_containerd", be + "/cri-containerd-" + kCid + ".scope", true, kUid, kCid, "containerd",
         "besteffort"},
        {"sd_besteffort_crio", be + "/crio-" + kCid + ".scope", true, kUid, kCid, "crio", "besteffort"},
        {"sd_guaranteed_containerd", gu + "/cri-containerd-" + kCid + ".scope", true, kUid, kCid, "containerd",
         "guaranteed"},
        {"sd_guaranteed_docker", gu + "/docker-" + kCid + ".scope", true, kUid, kCid, "docker", "guaranteed"},
        // pod-level cgroups
        {"sd_pod_level_burstable", bu, true, kUid, "", "", "burstable"},
        {"sd_pod_level_guaranteed", gu, true, kUid, "", "", "guaranteed"},
        {"sd_pod_level_trailing_slash", be + "/", true, kUid, "", "", "besteffort"},
        // cgroupfs driver
        {"fs_burstable", "/kubepods/burstable/pod" + kUid + "/" + kCid, true, kUid, kCid, "", "burstable"},
        {"fs_besteffort", "/kubepods/besteffort/pod" + kUid + "/" + kCid, true, kUid, kCid, "", "besteffort"},
        {"fs_guaranteed", "/kubepods/pod" + kUid + "/" + kCid, true, kUid, kCid, "", "guaranteed"},
        {"fs_crio_prefixed", "/kubepods/besteffort/pod" + kUid + "/crio-" + kCid, true, kUid, kCid, "crio",
         "besteffort"},
        {"fs_pod_level", "/kubepods/burstable/pod" + kUid, true, kUid, "", "", "burstable"},
        // prefixes before the kubepods cgroup
        {"test_prefix", "/podid-t123" + bu + "/cri-containerd-" + kCid + ".scope", true, kUid, kCid, "containerd",
         "burstable"},
        {"kind_node_prefix", "/system.slice/docker-" + kCid + ".scope" + gu, true, kUid, "", "", "guaranteed"},
        {"fs_prefix", "/a/b/kubepods/pod" + kUid + "/" + kCid, true, kUid, kCid, "", "guaranteed"},
        // delegated subtree of a container: still the outer container; a forged inner pod does not win
        {"container_subcgroup", bu + "/cri-containerd-" + kCid + ".scope/init.scope", true, kUid, kCid, "containerd",
         "burstable"},
        {"nested_forged_pod",
         gu + "/cri-containerd-" + kCid + ".scope/kubepods.slice/kubepods-pod" +
             "aaaaaaaa_bbbb_cccc_dddd_eeeeeeeeeeee.slice",
         true, kUid, kCid, "containerd", "guaranteed"},
        // upper-case UID is normalised
        {"uid_upper_case", "/kubepods/pod1D2F3A4B-5C6D-4E7F-8A9B-0C1D2E3F4A5B", true, kUid, "", "", "guaranteed"},
        // not pods
        {"root", "/", false},
        {"empty", "", false},
        {"relative", "kubepods.slice/kubepods-pod" + kUidU + ".slice", false},
        {"kubepods_root", "/kubepods.slice", false},
        {"qos_slice", "/kubepods.slice/kubepods-burstable.slice", false},
        {"fs_qos_dir", "/kubepods/besteffort", false},
        {"system_service", "/system.slice/containerd.service", false},
        {"crio_conmon", bu + "/crio-conmon-" + kCid + ".scope", false},
        {"unknown_runtime", bu + "/rkt-" + kCid + ".scope", false},
        {"sd_missing_scope_suffix", bu + "/cri-containerd-" + kCid, false},
        {"sd_bare_id", bu + "/" + kCid, false},
        {"cid_63_hex", bu + "/cri-containerd-" + kCid.substr(1) + ".scope", false},
        {"cid_65_hex", bu + "/cri-containerd-" + kCid + "0.scope", false},
        {"cid_non_hex", bu + "/cri-containerd-" + std::string(63, 'a') + "g.scope", false},
        {"cid_upper_hex", "/kubepods/pod" + kUid + "/" + std::string(64, 'A'), false},
        {"uid_dashes_in_systemd", "/kubepods.slice/kubepods-pod" + kUid + ".slice", false},
        {"uid_underscores_in_cgroupfs", "/kubepods/pod" + kUidU, false},
        {"uid_too_short", "/kubepods/pod" + kUid.substr(1), false},
        {"uid_too_long", "/kubepods/pod" + kUid + "0", false},
        {"uid_non_hex", "/kubepods/pod1d2f3a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5z", false},
        {"uid_misplaced_dash", "/kubepods/pod1d2f3a4b5-c6d-4e7f-8a9b-0c1d2e3f4a5b", false},
        {"qos_mismatch", "/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod" + kUidU + ".slice", false},
        {"qos_skipped", "/kubepods.slice/kubepods-burstable-pod" + kUidU + ".slice", false},
        {"pod_without_slice", "/kubepods.slice/kubepods-pod" + kUidU, false},
        {"double_slash", "/kubepods//pod" + kUid, false},
        {"garbage_after_pod", gu + "/init.scope", false},
        {"guaranteed_qos_name", "/kubepods/guaranteed/pod" + kUid, false},
        {"kubepods_as_suffix", "/mykubepods.slice/kubepods-pod" + kUidU + ".slice", false},
        {"garbage", "/\x01\xff/kubepods/\n/pod", false},
    };
}

TEST(KubeletCgroup, Table) {
    for (const auto& row : rows()) {
        SCOPED_TRACE(std::string(row.name) + ": " + row.path);
        auto ref = parse_kubelet_cgroup(row.path);
        ASSERT_EQ(ref.has_value(), row.ok);
        if (!ref)
            continue;
        EXPECT_EQ(ref->uid, row.uid);
        EXPECT_EQ(ref->container_id, row.container_id);
        EXPECT_EQ(ref->runtime, row.runtime);
        EXPECT_EQ(ref->qos, row.qos);
    }
}

struct AnchoredRow {
    const char* name;
    std::string path;
    std::string root;
    bool ok;
    std::string qos = {};
};

TEST(KubeletCgroup, AnchoredAtRoot) {
    const std::string sd = "/kubepods-besteffort.slice/kubepods-besteffort-pod" + kUidU + ".slice";
    const std::vector<AnchoredRow> table = {
        {"at_root", "/kubepods.slice" + sd, "/kubepods.slice", true, "besteffort"},
        {"root_trailing_slash", "/kubepods.slice" + sd, "/kubepods.slice/", true, "besteffort"},
        {"below_prefix", "/podid-t1/kubepods.slice" + sd, "/podid-t1/kubepods.slice", true, "besteffort"},
        {"other_prefix", "/evil/kubepods.slice" + sd, "/kubepods.slice", false},
        {"outside_root", "/podid-t2/kubepods.slice" + sd, "/podid-t1/kubepods.slice", false},
        {"name_prefix_only", "/kubepods.slice2" + sd, "/kubepods.slice", false},
        {"root_itself", "/kubepods.slice", "/kubepods.slice", false},
        {"cgroupfs", "/kubepods/burstable/pod" + kUid, "/kubepods", true, "burstable"},
        // cgroup namespace rooted at kubepods: the mount is the kubepods cgroup
        {"ns_root_systemd", sd, "/", true, "besteffort"},
        {"ns_root_cgroupfs", "/pod" + kUid + "/" + kCid, "/", true, "guaranteed"},
        {"ns_root_empty", sd, "", true, "besteffort"},
    };
    for (const auto& row : table) {
        SCOPED_TRACE(row.name);
        auto ref = parse_kubelet_cgroup(row.path, row.root);
        ASSERT_EQ(ref.has_value(), row.ok);
        if (ref) {
            EXPECT_EQ(ref->uid, kUid);
            EXPECT_EQ(ref->qos, row.qos);
        }
    }
}

// Random bytes and mutations of valid paths never crash and never yield a malformed UID or container id.
TEST(KubeletCgroup, RandomInputNeverCrashes) {
    std::mt19937 rng(12345);
    const std::string seed = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + kUidU +
                             ".slice/cri-containerd-" + kCid + ".scope";
    const std::string alphabet("/-_.abcdef0123456789kubepods.slicepodscope\0\xff", 44);
    int parsed = 0;
    for (int n = 0; n < 20000; ++n) {
        std::string s = seed;
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits && !s.empty(); ++e) {
            std::size_t pos = rng() % s.size();
            switch (rng() % 3) {
            case 0: s[pos] = alphabet[rng() % alphabet.size()]; break;
            case 1: s.erase(pos, 1 + rng() % 8); break;
            default: s.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
            }
        }
        if (n % 5 == 0) {
            s.resize(rng() % 200);
            for (auto& c : s)
                c = static_cast<char>(rng());
        }
        auto ref = parse_kubelet_cgroup(s);
        if (!ref)
            continue;
        ++parsed;
        ASSERT_EQ(ref->uid.size(), 36u) << s;
        ASSERT_TRUE(ref->container_id.empty() || ref->container_id.size() == 64u) << s;
    }
    EXPECT_GT(parsed, 0);  // some mutations (e.g. in the container id's hex digits) stay valid
}

}  // namespace
}  // namespace podid
