// --host-token-callers: parsing the flag, and who may ask /host/token for another pod's token.
#include "policy/host_token_policy.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace podid {
namespace {

struct ParseRow {
    std::string spec;
    std::optional<std::string> canonical;  // to_string() on success; nullopt when parse must fail
    std::string error_has;                 // part of the error message
};

TEST(HostTokenPolicyParse, Table) {
    const std::vector<ParseRow> rows = {
        {std::string(kDefaultHostTokenCallers), "kube-system", ""},
        {"kube-system/csi-secrets-store-provider-azure", "kube-system/csi-secrets-store-provider-azure", ""},
        {"kube-system, monitoring ,\tops/agent", "kube-system,monitoring,ops/agent", ""},
        {"host", "host", ""},
        {"host,kube-system", "kube-system,host", ""},
        {"none", "none", ""},
        {" none ", "none", ""},
        {"kube-system,kube-system", "kube-system", ""},
        {"a/sa.with.dots", "a/sa.with.dots", ""},
        {"host/csi", "host/csi", ""},
        {"", std::nullopt, "--host-token-callers is empty"},
        {"  ", std::nullopt, "--host-token-callers is empty"},
        {"kube-system,", std::nullopt, "entry 2 \"\": is empty (a stray comma?)"},
        {",kube-system", std::nullopt, "entry 1 \"\": is empty"},
        {"a,,b", std::nullopt, "entry 2 \"\": is empty"},
        {"none,host", std::nullopt, "\"none\" refuses every caller and cannot be combined"},
        {"kube-system,none", std::nullopt, "cannot be combined"},
        {"*", std::nullopt, "entry 1 \"*\": wildcards are not accepted"},
        {"kube-system/*", std::nullopt, "wildcards are not accepted"},
        {"Kube-System", std::nullopt, "entry 1 \"Kube-System\": \"Kube-System\" is not a valid namespace name"},
        {"HOST", std::nullopt, "not a valid namespace name"},
        {"-ns", std::nullopt, "not a valid namespace name"},
        {"ns.dotted", std::nullopt, "\"ns.dotted\" is not a valid namespace name"},
        {std::string(64, 'a'), std::nullopt, "not a valid namespace name"},
        {std::string(63, 'a'), std::string(63, 'a'), ""},
        {"kube-system/", std::nullopt, "\"\" is not a valid service account name"},
        {"/sa", std::nullopt, "\"\" is not a valid namespace name"},
        {"a/b/c", std::nullopt, "entry 1 \"a/b/c\": expected namespace or namespace/serviceaccount"},
        {"kube-system/Agent", std::nullopt, "\"Agent\" is not a valid service account name"},
        {"ok,bad_ns", std::nullopt, "entry 2 \"bad_ns\""},
    };
    for (const ParseRow& row : rows) {
        SCOPED_TRACE("spec: \"" + row.spec + "\"");
        Result<HostTokenPolicy> got = HostTokenPolicy::parse(row.spec);
        ASSERT_EQ(got.ok(), row.canonical.has_value()) << (got.ok() ? got->to_string() : got.error().message);
        if (got) {
            EXPECT_EQ(got->to_string(), *row.canonical);
            // The canonical form reads back as the same policy.
            Result<HostTokenPolicy> again = HostTokenPolicy::parse(got->to_string());
            ASSERT_TRUE(again.ok());
            EXPECT_EQ(again->rules(), got->rules());
            EXPECT_EQ(again->allows_host(), got->allows_host());
        } else {
            EXPECT_NE(got.error().message.find(row.error_has), std::string::npos) << got.error().message;
        }
    }
}

TEST(HostTokenPolicy, DefaultConstructedAllowsNobody) {
    HostTokenPolicy policy;
    EXPECT_EQ(policy.to_string(), "none");
    Caller node;
    node.origin = Origin{1, 1, "csi", "127.0.0.1:2579", false};
    node.cgroup_path = "/system.slice/kubelet.service";
    EXPECT_FALSE(policy.allows(node));
}

enum class Who {
    csi_pod,           // kube-system, service account csi-secrets-store-provider-azure
    other_sa_in_ks,    // kube-system, service account coredns
    default_sa_in_ks,  // kube-system, no service account recorded (counts as "default")
    app_pod,           // default/app
    node_process,      // a system.slice service
    unknown_pod,       // kubelet pod cgroup, pod not known yet
    unknown_cgroup,    // origin but no cgroup path
    no_origin,         // no kernel record, though the pod is known
};

Caller caller(Who who) {
    Caller c;
    c.origin = Origin{7, 1234, "provider", "127.0.0.1:2579", false};
    PodInfo p;
    p.name = "p";
    const PodRef ref{"0f1e2d3c-4b5a-4968-8776-655443322110", "", "containerd", "burstable"};
    const std::string pod_cgroup = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e.slice";
    switch (who) {
    case Who::csi_pod:
        p.ns = "kube-system";
        p.service_account = "csi-secrets-store-provider-azure";
        break;
    case Who::other_sa_in_ks:
        p.ns = "kube-system";
        p.service_account = "coredns";
        break;
    case Who::default_sa_in_ks:
        p.ns = "kube-system";
        p.service_account = "";
        break;
    case Who::app_pod:
        p.ns = "default";
        p.service_account = "app";
        break;
    case Who::no_origin:
        p.ns = "kube-system";
        p.service_account = "csi-secrets-store-provider-azure";
        break;
    case Who::node_process: c.cgroup_path = "/system.slice/csi-helper.service"; return c;
    case Who::unknown_pod:
        c.cgroup_path = pod_cgroup;
        c.pod_ref = ref;
        return c;
    case Who::unknown_cgroup: return c;
    }
    c.cgroup_path = pod_cgroup;
    c.pod_ref = ref;
    c.pod = p;
    if (who == Who::no_origin) {
        c.origin.reset();
    }
    return c;
}

struct AllowRow {
    std::string spec;
    Who who;
    bool allowed;
};

TEST(HostTokenPolicyAllows, Table) {
    const std::vector<AllowRow> rows = {
        {"kube-system", Who::csi_pod, true},
        {"kube-system", Who::other_sa_in_ks, true},
        {"kube-system", Who::default_sa_in_ks, true},
        {"kube-system", Who::app_pod, false},
        {"kube-system", Who::node_process, false},
        {"kube-system", Who::unknown_pod, false},
        {"kube-system", Who::unknown_cgroup, false},
        {"kube-system", Who::no_origin, false},
        {"kube-system/csi-secrets-store-provider-azure", Who::csi_pod, true},
        {"kube-system/csi-secrets-store-provider-azure", Who::other_sa_in_ks, false},
        {"kube-system/csi-secrets-store-provider-azure", Who::default_sa_in_ks, false},
        {"kube-system/default", Who::default_sa_in_ks, true},
        {"kube-system/default", Who::csi_pod, false},
        {"default", Who::app_pod, true},
        {"default/app,kube-system/coredns", Who::other_sa_in_ks, true},
        {"default/app,kube-system/coredns", Who::csi_pod, false},
        {"host", Who::node_process, true},
        {"host", Who::csi_pod, false},
        {"host", Who::unknown_pod, false},
        {"host", Who::unknown_cgroup, false},
        {"kube-system,host", Who::node_process, true},
        {"kube-system,host", Who::csi_pod, true},
        {"host/csi-secrets-store-provider-azure", Who::node_process, false},
        {"none", Who::csi_pod, false},
        {"none", Who::node_process, false},
        {"kube", Who::csi_pod, false},
    };
    for (const AllowRow& row : rows) {
        SCOPED_TRACE("spec \"" + row.spec + "\", caller " + std::to_string(static_cast<int>(row.who)));
        Result<HostTokenPolicy> policy = HostTokenPolicy::parse(row.spec);
        ASSERT_TRUE(policy.ok()) << policy.error().message;
        EXPECT_EQ(policy->allows(caller(row.who)), row.allowed);
    }
}

}  // namespace
}  // namespace podid
